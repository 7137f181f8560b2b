package org.bbemobile.grouper

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.Random

/** A deliberately naive transcription of docs/grouper.md, used as an oracle on random maps. */
object ReferenceGrouper {
    private fun box(off: FloatArray, i: Int, j: Int, w: Int, stride: Double, c: GrouperConfig): DoubleArray {
        val o = 4 * (i * w + j)
        val bw = c.anchorW * Math.exp(Math.min(Math.max(off[o + 2].toDouble(), -c.maxLogScale), c.maxLogScale))
        val bh = c.anchorH * Math.exp(Math.min(Math.max(off[o + 3].toDouble(), -c.maxLogScale), c.maxLogScale))
        val bx = (j + 0.5) * stride + off[o].toDouble() * c.anchorW
        val by = (i + 0.5) * stride + off[o + 1].toDouble() * c.anchorH
        return doubleArrayOf(bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2)
    }

    private fun area(b: DoubleArray) = Math.max(b[2] - b[0], 0.0) * Math.max(b[3] - b[1], 0.0)

    fun iou(a: DoubleArray, b: DoubleArray): Double {
        val iw = Math.max(0.0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]))
        val ih = Math.max(0.0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]))
        val inter = iw * ih
        val union = area(a) + area(b) - inter
        return if (union > 0) inter / union else 0.0
    }

    fun group(prob: FloatArray, off: FloatArray, h: Int, w: Int, stride: Double, c: GrouperConfig): Instances {
        val peaks = ArrayList<Int>()
        for (i in 0 until h) for (j in 0 until w) {
            val p = prob[i * w + j].toDouble()
            if (p < c.tC) continue
            var ok = true
            for (di in -1..1) for (dj in -1..1) {
                val k = i + di
                val l = j + dj
                if ((di != 0 || dj != 0) && k in 0 until h && l in 0 until w && p < prob[k * w + l].toDouble()) ok = false
            }
            if (ok) peaks.add(i * w + j)
        }
        val order = peaks.sortedWith(Comparator { a, b -> java.lang.Double.compare(-prob[a].toDouble(), -prob[b].toDouble()) })
        val kept = ArrayList<DoubleArray>()
        for (idx in order) {
            if (kept.size >= c.maxInstances) break
            val b = box(off, idx / w, idx % w, w, stride, c)
            if (kept.all { iou(b, it) <= c.tNms }) kept.add(b)
        }
        val raw = IntArray(h * w)
        for (idx in 0 until h * w) {
            if (prob[idx].toDouble() < c.tFg || kept.isEmpty()) continue
            val b = box(off, idx / w, idx % w, w, stride, c)
            var best = 0
            for (k in 1 until kept.size) if (iou(b, kept[k]) > iou(b, kept[best])) best = k
            if (iou(b, kept[best]) >= c.tIou) raw[idx] = best + 1
        }
        val present = (1..kept.size).filter { k -> raw.any { it == k } }
        val labels = IntArray(h * w) { if (raw[it] == 0) 0 else present.indexOf(raw[it]) + 1 }
        val boxes = FloatArray(4 * present.size)
        val scores = FloatArray(present.size)
        for ((q, k) in present.withIndex()) {
            for (t in 0 until 4) boxes[4 * q + t] = kept[k - 1][t].toFloat()
            var s = 0.0
            var n = 0
            for (idx in raw.indices) if (raw[idx] == k) {
                s += prob[idx].toDouble()
                n++
            }
            scores[q] = (s / n).toFloat()
        }
        return Instances(h, w, labels, boxes, scores)
    }
}

/** Seeded random maps: invariants of the output and agreement with the naive oracle. */
class PropertyTest {
    private class RandomCase(val h: Int, val w: Int, val stride: Double, val prob: FloatArray, val offsets: FloatArray, val config: GrouperConfig)

    private fun randomCase(rng: Random): RandomCase {
        val h = rng.nextInt(40)
        val w = rng.nextInt(40)
        val stride = if (rng.nextBoolean()) 4.0 else 1.0 + 7.0 * rng.nextDouble()
        val prob = FloatArray(h * w)
        val offsets = FloatArray(4 * h * w)
        // Background noise plus a few blobs; quantised probabilities create plateaus and exact ties.
        val quantised = rng.nextInt(3) == 0
        for (q in prob.indices) prob[q] = (0.45 * rng.nextDouble()).toFloat()
        val blobs = rng.nextInt(6)
        for (b in 0 until blobs) {
            val ci = rng.nextInt(Math.max(h, 1))
            val cj = rng.nextInt(Math.max(w, 1))
            val r = 1 + rng.nextInt(8)
            val peak = 0.6 + 0.4 * rng.nextDouble()
            for (i in Math.max(0, ci - r) until Math.min(h, ci + r + 1)) for (j in Math.max(0, cj - r) until Math.min(w, cj + r + 1)) {
                val d = Math.hypot((i - ci).toDouble(), (j - cj).toDouble()) / r
                if (d > 1) continue
                var p = peak - 0.35 * d
                if (quantised) p = Math.rint(p * 20) / 20
                prob[i * w + j] = Math.max(prob[i * w + j].toDouble(), Math.min(1.0, p)).toFloat()
            }
        }
        for (q in offsets.indices) offsets[q] = (rng.nextGaussian() * (if (q % 4 < 2) 0.3 else 1.5)).toFloat()
        val config = if (rng.nextBoolean()) GrouperConfig() else GrouperConfig(
            tC = rng.nextDouble(), tNms = rng.nextDouble(), tFg = rng.nextDouble(), tIou = rng.nextDouble(),
            maxInstances = rng.nextInt(25), maxLogScale = 0.5 + 4 * rng.nextDouble()
        )
        return RandomCase(h, w, stride, prob, offsets, config)
    }

    @Test
    fun invariantsAndOracleOnRandomMaps() {
        val rng = Random(20240607L)
        repeat(300) { t ->
            val c = randomCase(rng)
            val grouper = Grouper(c.config)
            val got = grouper.group(c.prob, c.offsets, c.h, c.w, c.stride)
            val again = grouper.group(c.prob.copyOf(), c.offsets.copyOf(), c.h, c.w, c.stride)
            val what = "random case $t (${c.h}x${c.w}, ${c.config})"
            // Deterministic.
            assertArrayEquals(what, got.labels, again.labels)
            assertArrayEquals(what, got.boxes, again.boxes, 0f)
            assertArrayEquals(what, got.scores, again.scores, 0f)
            // Bounds.
            assertTrue(what, got.count <= c.config.maxInstances)
            assertEquals(what, 4 * got.count, got.boxes.size)
            val seen = BooleanArray(got.count + 1)
            for (q in got.labels.indices) {
                val l = got.labels[q]
                assertTrue("$what: label $l out of 0..${got.count}", l >= 0 && l <= got.count)
                if (l > 0) assertTrue("$what: label on a cell below t_fg", c.prob[q].toDouble() >= c.config.tFg)
                seen[l] = true
            }
            for (k in 1..got.count) assertTrue("$what: labels not contiguous, $k missing", seen[k])
            for (s in got.scores) assertTrue("$what: score $s", s >= 0f && s <= 1f && s.toDouble() >= c.config.tFg - 1e-6)
            for (k in 0 until got.count) {
                assertTrue(what, got.boxes[4 * k] < got.boxes[4 * k + 2] && got.boxes[4 * k + 1] < got.boxes[4 * k + 3])
            }
            // The oracle agrees exactly (same float64 operations in the same order).
            val ref = ReferenceGrouper.group(c.prob, c.offsets, c.h, c.w, c.stride, c.config)
            assertArrayEquals("$what: labels vs oracle", ref.labels, got.labels)
            assertArrayEquals("$what: boxes vs oracle", ref.boxes, got.boxes, 0f)
            assertArrayEquals("$what: scores vs oracle", ref.scores, got.scores, 1e-6f)
        }
    }

    @Test
    fun allZeroMapGivesNoInstance() {
        for (size in intArrayOf(1, 2, 17, 64)) {
            val got = Grouper().group(FloatArray(size * size), FloatArray(4 * size * size), size, size, 4.0)
            assertEquals(0, got.count)
            assertTrue(got.labels.all { it == 0 })
        }
    }

    @Test
    fun emptyMapsAreValid() {
        for ((h, w) in listOf(0 to 0, 0 to 5, 7 to 0)) {
            val got = Grouper().group(FloatArray(0), FloatArray(0), h, w, 4.0)
            assertEquals(0, got.count)
            assertEquals(0, got.labels.size)
        }
    }

    @Test
    fun maxInstancesZeroKeepsNothing() {
        val prob = FloatArray(64) { 0.9f }
        val got = Grouper(GrouperConfig(maxInstances = 0)).group(prob, FloatArray(256), 8, 8, 4.0)
        assertEquals(0, got.count)
        assertTrue(got.labels.all { it == 0 })
    }

    @Test
    fun singleCellIsTheAnchorBox() {
        val prob = FloatArray(64)
        prob[3 * 8 + 5] = 0.9f
        val got = Grouper().group(prob, FloatArray(256), 8, 8, 4.0)
        assertEquals(1, got.count)
        val c = GrouperConfig()
        val cx = 5.5 * 4
        val cy = 3.5 * 4
        assertArrayEquals(
            floatArrayOf((cx - c.anchorW / 2).toFloat(), (cy - c.anchorH / 2).toFloat(), (cx + c.anchorW / 2).toFloat(), (cy + c.anchorH / 2).toFloat()),
            got.box(0), 0f
        )
        assertEquals(0.9f, got.scores[0], 0f)
        assertEquals(1, got.labels[3 * 8 + 5])
    }

    @Test
    fun thresholdsAreNonStrict() {
        // p == t_c == t_fg exactly (0.5f is exact in float and double): a peak and a person cell.
        val prob = FloatArray(9)
        prob[4] = 0.5f
        val got = Grouper(GrouperConfig(tC = 0.5, tFg = 0.5, tIou = 1.0)).group(prob, FloatArray(36), 3, 3, 4.0)
        assertEquals(1, got.count) // IoU of the box with itself is exactly 1 >= t_iou = 1
        assertEquals(1, got.labels[4])
    }

    @Test
    fun letterboxGeometry() {
        val lb = Letterbox(480, 640, 512)
        assertEquals(0.8, lb.scale, 0.0)
        assertEquals(384, lb.contentHeight)
        assertEquals(512, lb.contentWidth)
        // Half-way rounding is to even, like Python's round(): 5 * 0.5 = 2.5 -> 2.
        val odd = Letterbox(5, 10, 5)
        assertEquals(2, odd.contentHeight)
        assertEquals(5, odd.contentWidth)
        assertArrayEquals(floatArrayOf(0f, 10f, 640f, 480f), lb.boxesToImage(floatArrayOf(-4f, 8f, 600f, 400f)), 0f)
        // Nearest cell: 2x2 map at stride 4, image 10x10 at scale 0.8.
        val up = Upsampling.labelsToImage(intArrayOf(1, 2, 3, 4), 2, 2, 4.0, 0.8, 10, 10)
        assertEquals(1, up[0])
        assertEquals(2, up[9]) // u = 9: floor(9.5 * 0.8 / 4) = 1
        assertEquals(1, up[4]) // u = 4: floor(4.5 * 0.8 / 4) = 0
        assertEquals(2, up[5]) // u = 5: floor(5.5 * 0.8 / 4) = 1
        assertEquals(4, up[99])
    }

    @Test
    fun benchStatsInterpolate() {
        val s = BenchStats.of(doubleArrayOf(5.0, 1.0, 3.0, 2.0, 4.0))
        assertEquals(3.0, s.medianMs, 0.0)
        assertEquals(4.6, s.p90Ms, 1e-12)
        assertEquals(1.0, s.minMs, 0.0)
    }

    @Test
    fun benchReportIsValidJson() {
        val report = BenchReport(
            "kotlin-grouper", "host \"x\"", 10, 2,
            listOf(BenchResult("grouper", "bench_129_10", BenchStats(0.12, 0.15, 0.1), linkedMapOf<String, Any?>("height" to 129, "width" to 129, "people" to 10)))
        )
        val doc = MiniJson.parseObject(report.toJson())
        assertEquals("bbe-bench/1", doc["format"])
        assertEquals("host \"x\"", doc["device"])
        val r = (doc["results"] as List<*>)[0] as Map<*, *>
        assertEquals(0.12, r["median_ms"])
        assertEquals(129.0, r["height"])
        assertEquals("bench_129_10", r["name"])
    }
}
