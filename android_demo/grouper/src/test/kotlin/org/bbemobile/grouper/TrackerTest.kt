package org.bbemobile.grouper

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** The golden tracking sequences (docs/tracker.md) bit for bit, and the tracker's rules on hand-made maps. */
class TrackerTest {
    @Test
    fun everyGoldenSequence() {
        val names = GoldenTrackingSequence.index(Golden.dir)
        assertTrue(names.contains("track_life") && names.contains("track_bench_129_10"))
        for (name in names) {
            val seq = GoldenTrackingSequence.load(Golden.dir, name)
            val cells = seq.height * seq.width
            val grouper = Grouper(seq.grouper)
            var state = TrackerState()
            for (t in 0 until seq.frames) {
                val offsets = seq.frame(seq.offsets, t, 4 * cells)
                val step = Tracker.step(state, seq.frame(seq.prob, t, cells), seq.height, seq.width, seq.tracker,
                    seq.contentHeight, seq.contentWidth) { smoothed ->
                    grouper.group(smoothed, offsets, seq.height, seq.width, seq.stride)
                }
                state = step.state
                val want = seq.frame(seq.smoothed, t, cells)
                val got = state.smoothed!!
                for (i in 0 until cells) {
                    if (java.lang.Float.floatToRawIntBits(got[i]) != java.lang.Float.floatToRawIntBits(want[i])) {
                        fail("$name frame $t: smoothed differs at $i")
                    }
                }
                assertArrayEquals("$name frame $t: labels", seq.frame(seq.labels, t, cells), step.instances.labels)
                val e = seq.expected[t]
                assertArrayEquals("$name frame $t: ids", e.ids, step.frame.ids)
                assertEquals("$name frame $t: main id", e.mainId, step.frame.mainId)
                assertEquals("$name frame $t: scene change", e.sceneChange, step.frame.sceneChange)
            }
        }
    }

    /** A `h x w` label map with rectangles (row0, row1, col0, col1) labelled 1, 2, ... (later on top). */
    private fun labels(h: Int, w: Int, vararg boxes: IntArray): IntArray {
        val out = IntArray(h * w)
        for ((k, b) in boxes.withIndex()) for (i in b[0] until b[1]) for (j in b[2] until b[3]) out[i * w + j] = k + 1
        return out
    }

    @Test
    fun birthDeathAndIdsNeverReused() {
        val config = TrackerConfig(minHits = 3, maxAge = 1)
        val person = labels(10, 10, intArrayOf(1, 6, 1, 4))
        val nobody = labels(10, 10)
        var state = TrackerState()
        val seen = ArrayList<List<Int>>()
        for (map in listOf(person, person, person, nobody, nobody, person, person, person)) {
            val (next, frame) = Tracker.update(state, map, 10, 10, config)
            state = next
            seen.add(frame.ids.toList())
        }
        assertEquals(listOf(listOf(0), listOf(0), listOf(1), listOf(), listOf(), listOf(0), listOf(0), listOf(2)), seen)
    }

    @Test
    fun equalIousGoToTheOlderTrack() {
        val config = TrackerConfig(minHits = 1, tMatch = 0.1)
        val (state, _) = Tracker.update(TrackerState(), labels(10, 10, intArrayOf(0, 4, 0, 4), intArrayOf(0, 4, 4, 8)), 10, 10, config)
        val (_, frame) = Tracker.update(state, labels(10, 10, intArrayOf(0, 4, 2, 6)), 10, 10, config)
        assertArrayEquals(intArrayOf(1), frame.ids)
    }

    @Test
    fun errors() {
        for (bad in listOf<() -> Unit>(
            { TrackerConfig(smoothing = 0.0) },
            { Tracker.update(TrackerState(), intArrayOf(-1), 1, 1) },
            { Tracker.update(TrackerState(), intArrayOf(0, 0), 1, 1) },
            { Tracker.smooth(TrackerState(), floatArrayOf(Float.NaN), 1, 1, TrackerConfig()) },
            { Tracker.update(TrackerState(), intArrayOf(0), 1, 1, TrackerConfig(), 0.0, 1.0) }
        )) {
            try {
                bad()
                fail("expected IllegalArgumentException")
            } catch (e: IllegalArgumentException) {
            }
        }
        assertEquals(0, Tracker.update(TrackerState(), IntArray(0), 0, 5).second.ids.size)  // empty maps: nobody
    }
}
