// The BBE person instance segmentation demo: CameraX + LiteRT (TFLite) + the Kotlin grouper (:grouper).
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.bbemobile.demo"
    compileSdk = 34

    defaultConfig {
        applicationId = "org.bbemobile.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    androidResources {
        // The .tflite model is memory-mapped from the APK: it must stay uncompressed.
        noCompress += "tflite"
    }
}

// The golden benchmark cases of ../tests/golden are packaged as assets (golden/...) for the benchmark screen,
// copied at build time (never committed twice).
val goldenAssetsDir = layout.buildDirectory.dir("generated/goldenAssets").get().asFile
val copyGoldenAssets by tasks.registering(Sync::class) {
    from(rootProject.file("../tests/golden")) {
        include("bench_*")
    }
    into(File(goldenAssetsDir, "golden"))
}
android.sourceSets["main"].assets.srcDir(goldenAssetsDir)
tasks.named("preBuild") {
    dependsOn(copyGoldenAssets)
}

dependencies {
    implementation(project(":grouper"))

    implementation("androidx.core:core-ktx:1.13.1")
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.fragment:fragment-ktx:1.8.2")
    implementation("androidx.exifinterface:exifinterface:1.3.7")

    val cameraX = "1.3.4"
    implementation("androidx.camera:camera-core:$cameraX")
    implementation("androidx.camera:camera-camera2:$cameraX")
    implementation("androidx.camera:camera-lifecycle:$cameraX")
    implementation("androidx.camera:camera-view:$cameraX")

    val litert = "1.0.1"
    implementation("com.google.ai.edge.litert:litert:$litert")
    implementation("com.google.ai.edge.litert:litert-gpu:$litert")
    implementation("com.google.ai.edge.litert:litert-gpu-api:$litert")
}
