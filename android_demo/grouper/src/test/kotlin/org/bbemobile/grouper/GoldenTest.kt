package org.bbemobile.grouper

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Golden directory shared by the tests (system property `bbe.golden.dir` or found from the working dir). */
object Golden {
    val dir: File by lazy {
        val d = GoldenCase.findDir()
        assertNotNull("tests/golden not found: pass -Dbbe.golden.dir=... or run inside the repository", d)
        assertTrue("golden index missing in $d", File(d, "index.json").isFile)
        d!!
    }

    val names: List<String> by lazy { GoldenCase.index(dir) }
}

/** Every golden case: labels exactly, boxes and scores within the case tolerance, letterbox block too. */
@RunWith(Parameterized::class)
class GoldenTest(private val name: String) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun cases(): Collection<Array<Any>> = Golden.names.map { arrayOf<Any>(it) }
    }

    private val case: GoldenCase = GoldenCase.load(Golden.dir, name)

    private fun assertInstances(got: Instances, how: String) {
        val c = case
        assertEquals("$name ($how): height", c.height, got.height)
        assertEquals("$name ($how): width", c.width, got.width)
        assertEquals("$name ($how): instance count", c.scores.size, got.count)
        assertTrue("$name ($how): count <= max_instances", got.count <= c.config.maxInstances)
        val n = c.height * c.width
        for (q in 0 until n) {
            if (got.labels[q] != c.labels[q]) {
                fail("$name ($how): label at row ${q / c.width}, col ${q % c.width} is ${got.labels[q]}, expected ${c.labels[q]}")
            }
        }
        for (q in c.boxes.indices) {
            assertEquals("$name ($how): box ${q / 4} coordinate ${q % 4}", c.boxes[q].toDouble(), got.boxes[q].toDouble(), c.tolerance)
        }
        for (q in c.scores.indices) {
            assertEquals("$name ($how): score $q", c.scores[q].toDouble(), got.scores[q].toDouble(), c.tolerance)
        }
    }

    @Test
    fun matchesGoldenOnArrays() {
        val got = Grouper(case.config).group(case.prob, case.offsets, case.height, case.width, case.stride)
        assertInstances(got, "FloatArray")
    }

    @Test
    fun matchesGoldenOnDirectBuffersBothByteOrders() {
        val grouper = Grouper(case.config)
        val labelsOut = IntArray(case.height * case.width + 3) { 7 }
        for (order in listOf(ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN)) {
            val p = ByteBuffer.allocateDirect(4 * case.prob.size + 8).order(order)
            val o = ByteBuffer.allocateDirect(4 * case.offsets.size).order(order)
            val pf = p.asFloatBuffer()
            pf.put(-1f) // a leading value the grouper must skip: it reads from position() to limit()
            pf.put(case.prob)
            o.asFloatBuffer().put(case.offsets)
            pf.position(1)
            pf.limit(1 + case.prob.size)
            val got = grouper.group(pf, o.asFloatBuffer(), case.height, case.width, case.stride, labelsOut)
            assertInstances(got, "FloatBuffer $order")
            assertEquals("position unchanged", 1, pf.position())
            // Twice on the same Grouper (reused work arrays): identical.
            assertInstances(grouper.group(pf, o.asFloatBuffer(), case.height, case.width, case.stride), "FloatBuffer $order again")
        }
    }

    @Test
    fun letterboxBlock() {
        val img = case.image ?: return
        val got = Grouper(case.config).group(case.prob, case.offsets, case.height, case.width, case.stride)
        val labels = Upsampling.labelsToImage(got.labels, got.height, got.width, case.stride, img.scale, img.height, img.width)
        assertEquals(img.labels.size, labels.size)
        for (q in labels.indices) {
            if (labels[q] != img.labels[q]) {
                fail("$name: image label at row ${q / img.width}, col ${q % img.width} is ${labels[q]}, expected ${img.labels[q]}")
            }
        }
        val boxes = Upsampling.boxesToImage(got.boxes, img.scale, img.height, img.width)
        assertEquals(img.boxes.size, boxes.size)
        for (q in boxes.indices) {
            assertEquals("$name: image box ${q / 4} coordinate ${q % 4}", img.boxes[q].toDouble(), boxes[q].toDouble(), case.tolerance)
        }
        // The Letterbox class agrees when the case's scale is the one of some input size (COCO cases: 256).
        val side = Math.max(img.height, img.width) * img.scale
        if (Math.abs(side - Math.rint(side)) < 1e-9) {
            val lb = Letterbox(img.height, img.width, Math.rint(side).toInt())
            assertEquals(img.scale, lb.scale, 1e-12)
            val viaClass = lb.labelsToImage(got, case.stride)
            for (q in labels.indices) assertEquals(labels[q], viaClass[q])
        }
    }
}

/** Sanity of the golden set itself, so a silently empty directory cannot pass. */
class GoldenIndexTest {
    @Test
    fun indexListsTheExpectedCases() {
        val names = Golden.names
        assertTrue("at least 20 golden cases, got ${names.size}", names.size >= 20)
        assertTrue(names.contains("bench_129_10"))
        assertTrue("some case has an image block", names.any { GoldenCase.load(Golden.dir, it).image != null })
    }
}
