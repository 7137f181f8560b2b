@file:JvmName("GrouperBench")

package org.bbemobile.grouper

import java.io.File
import kotlin.system.exitProcess

private const val USAGE = """usage: GrouperBench [--golden DIR] [--runs N] [--warmup N] [--case NAME]... [--out FILE]

Times the Kotlin grouper on the golden benchmark cases (bench_people != null) and the tracker on the golden
sequence track_bench_129_10 (smoothing + tracking per frame), and prints a bbe-bench/1
JSON report (source "kotlin-grouper", device "host") to stdout, or writes it to FILE.
  --golden DIR   golden directory (default: -Dbbe.golden.dir, env BBE_GOLDEN_DIR, or tests/golden found upwards)
  --runs N       timed runs per case (default 200)
  --warmup N     untimed runs per case before timing, after a global JIT warm-up (default 200)
  --case NAME    only this case (repeatable)
Exit status 1 when a case's labels differ from the golden ones, 2 on usage errors."""

private fun usage(msg: String): Nothing {
    System.err.println("GrouperBench: $msg\n\n$USAGE")
    exitProcess(2)
}

/** Entry point of the JVM grouper benchmark; see [USAGE]. */
fun main(args: Array<String>) {
    var golden: File? = null
    var runs = 200
    var warmup = 200
    var out: File? = null
    val only = ArrayList<String>()
    var a = 0
    fun next(flag: String): String {
        if (a + 1 >= args.size) usage("$flag needs a value")
        a += 2
        return args[a - 1]
    }
    fun count(flag: String): Int {
        val v = next(flag)
        val n = v.toIntOrNull() ?: usage("$flag must be an integer, got $v")
        if (n < 0 || (flag == "--runs" && n < 1)) usage("$flag must be positive, got $v")
        return n
    }
    while (a < args.size) {
        when (args[a]) {
            "--golden" -> golden = File(next("--golden"))
            "--runs" -> runs = count("--runs")
            "--warmup" -> warmup = count("--warmup")
            "--out" -> out = File(next("--out"))
            "--case" -> only.add(next("--case"))
            "-h", "--help" -> {
                println(USAGE)
                return
            }
            else -> usage("unknown argument ${args[a]}")
        }
    }
    val dir = golden ?: GoldenCase.findDir() ?: usage("tests/golden not found; pass --golden DIR")
    val names = GoldenCase.index(dir)
    for (n in only) if (n !in names) usage("no golden case $n in $dir")
    val cases = names.filter { only.isEmpty() || it in only }
        .map { GoldenCase.load(dir, it) }
        .filter { it.benchPeople != null }
    if (cases.isEmpty()) usage("no benchmark case (bench_people != null) selected in $dir")

    val groupers = cases.map { Grouper(it.config) }
    val labelsOut = cases.map { IntArray(it.height * it.width) }
    // Global JIT warm-up over every case (C2 compiles the hot loops), then per-case untimed runs.
    val deadline = System.nanoTime() + 2_000_000_000L
    var rounds = 0
    while (rounds < 300 && System.nanoTime() < deadline) {
        for (k in cases.indices) {
            val c = cases[k]
            groupers[k].group(c.prob, c.offsets, c.height, c.width, c.stride, labelsOut[k])
        }
        rounds++
    }
    val results = ArrayList<BenchResult>()
    var failed = false
    for (k in cases.indices) {
        val c = cases[k]
        val g = groupers[k]
        for (r in 0 until warmup) g.group(c.prob, c.offsets, c.height, c.width, c.stride, labelsOut[k])
        val times = DoubleArray(runs)
        var last: Instances? = null
        for (r in 0 until runs) {
            val t0 = System.nanoTime()
            last = g.group(c.prob, c.offsets, c.height, c.width, c.stride, labelsOut[k])
            times[r] = (System.nanoTime() - t0) / 1e6
        }
        val got = last!!
        val ok = got.labels.contentEquals(c.labels) && got.count == c.scores.size
        if (!ok) {
            System.err.println("GrouperBench: ${c.name}: labels differ from the golden labels")
            failed = true
        }
        val stats = BenchStats.of(times)
        results.add(BenchResult("grouper", c.name, stats,
            linkedMapOf<String, Any?>("height" to c.height, "width" to c.width, "people" to c.benchPeople)))
        System.err.println(String.format("%-14s %4dx%-4d %2d people  median %.4f ms  p90 %.4f ms  min %.4f ms  %s",
            c.name, c.height, c.width, c.benchPeople, stats.medianMs, stats.p90Ms, stats.minMs, if (ok) "labels OK" else "LABELS DIFFER"))
    }
    if (only.isEmpty()) trackerBench(dir, runs, warmup)?.let { results.add(it) }
    val json = BenchReport("kotlin-grouper", "host", runs, warmup, results).toJson()
    val o = out
    if (o == null) print(json) else {
        o.absoluteFile.parentFile?.mkdirs()
        o.writeText(json)
        System.err.println("GrouperBench: wrote ${o.path}")
    }
    if (failed) exitProcess(1)
}
