// Pure Kotlin/JVM grouper (no Android dependency), used by :app and tested against ../../tests/golden.
plugins {
    id("org.jetbrains.kotlin.jvm")
}

// Java 17 bytecode whatever JDK runs Gradle (no toolchain download needed); :app consumes it with D8.
java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

tasks.withType<org.jetbrains.kotlin.gradle.tasks.KotlinCompile>().configureEach {
    compilerOptions.jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
}

// The JVM benchmark (GrouperBench.kt) lives in its own source set so the library stays minimal.
val bench: SourceSet by sourceSets.creating {
    compileClasspath += sourceSets.main.get().output
    runtimeClasspath += sourceSets.main.get().output
}

configurations[bench.implementationConfigurationName].extendsFrom(configurations.implementation.get())

dependencies {
    testImplementation("junit:junit:4.13.2")
}

val goldenDir = rootProject.projectDir.resolve("../tests/golden").canonicalPath

tasks.test {
    systemProperty("bbe.golden.dir", goldenDir)
    inputs.dir(goldenDir)
}

// ./gradlew :grouper:bench [-Pargs="--runs 500 --out build/bench.json"]
tasks.register<JavaExec>("bench") {
    group = "verification"
    description = "Times the grouper on the golden benchmark cases (bbe-bench/1 JSON)."
    classpath = bench.runtimeClasspath
    mainClass.set("org.bbemobile.grouper.GrouperBench")
    systemProperty("bbe.golden.dir", goldenDir)
    args = (project.findProperty("args") as String?)?.split(" ")?.filter { it.isNotEmpty() } ?: emptyList()
}
