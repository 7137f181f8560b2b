package org.bbemobile.grouper

import java.io.File

/** Name of the golden tracking sequence the tracker bench times (129x129 maps, 10 people). */
const val TRACKER_BENCH_SEQUENCE = "track_bench_129_10"

/**
 * Smoothing + tracking (docs/tracker.md) per frame of the golden benchmark sequence, grouper excluded (its labels
 * come from the golden file): each run is one pass from a fresh state, its time divided by the frame count. Null
 * when [dir] holds no such sequence; an [IllegalStateException] when the IDs differ from the golden ones.
 */
fun trackerBench(dir: File, runs: Int, warmup: Int): BenchResult? {
    if (!File(dir, "tracking.json").isFile || TRACKER_BENCH_SEQUENCE !in GoldenTrackingSequence.index(dir)) return null
    val seq = GoldenTrackingSequence.load(dir, TRACKER_BENCH_SEQUENCE)
    val cells = seq.height * seq.width
    val probs = (0 until seq.frames).map { seq.frame(seq.prob, it, cells) }
    val labels = (0 until seq.frames).map { seq.frame(seq.labels, it, cells) }
    fun pass(): List<TrackedFrame> {
        var state = TrackerState()
        val out = ArrayList<TrackedFrame>()
        for (t in 0 until seq.frames) {
            val smoothed = Tracker.smooth(state, probs[t], seq.height, seq.width, seq.tracker).first
            state = TrackerState(smoothed, seq.height, seq.width, state.tracks, state.height, state.width,
                state.nextId, state.mainId, state.challengerId, state.challengerFrames)
            val (next, frame) = Tracker.update(state, labels[t], seq.height, seq.width, seq.tracker,
                seq.contentHeight, seq.contentWidth)
            state = next
            out.add(frame)
        }
        return out
    }
    val deadline = System.nanoTime() + 2_000_000_000L  // JIT warm-up (as the grouper's), then the untimed runs
    while (System.nanoTime() < deadline) pass()
    for (r in 0 until warmup) pass()
    val times = DoubleArray(runs)
    var last: List<TrackedFrame> = emptyList()
    for (r in 0 until runs) {
        val t0 = System.nanoTime()
        last = pass()
        times[r] = (System.nanoTime() - t0) / 1e6 / seq.frames
    }
    for ((t, frame) in last.withIndex()) {
        check(frame.ids.contentEquals(seq.expected[t].ids) && frame.mainId == seq.expected[t].mainId) {
            "${seq.name} frame $t: tracker IDs differ from the golden ones"
        }
    }
    val stats = BenchStats.of(times)
    System.err.println(String.format("%-18s %4dx%-4d 10 people  tracker + smoothing per frame: median %.4f ms  p90 %.4f ms",
        seq.name, seq.height, seq.width, stats.medianMs, stats.p90Ms))
    return BenchResult("tracker", seq.name, stats,
        linkedMapOf<String, Any?>("height" to seq.height, "width" to seq.width, "people" to 10, "frames" to seq.frames))
}
