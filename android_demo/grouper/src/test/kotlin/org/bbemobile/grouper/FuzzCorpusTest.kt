package org.bbemobile.grouper

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Assume.assumeTrue
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer
import java.util.Random

/**
 * The Kotlin readers of untrusted files on mutated inputs: golden cases ([GoldenCase]) and `bbe` metadata
 * ([BbeMetadata]) from the corpus `tests/fuzz_corpus.py` writes (system property `bbe.fuzz.corpus`; test.sh
 * writes one), and the `.tflite` metadata reader ([TfliteMetadata]) on a valid model whose bytes are flipped,
 * overwritten or cut with a seeded RNG (`bbe.fuzz.examples` models, default 3000). Each input must be read or
 * refused with an [IllegalArgumentException] whose message is one line; any other throwable fails.
 */
class FuzzCorpusTest {
    private fun corpus(): File {
        val path = System.getProperty("bbe.fuzz.corpus") ?: System.getenv("BBE_FUZZ_CORPUS")
        assumeTrue("bbe.fuzz.corpus is not set (test.sh writes the corpus with tests/fuzz_corpus.py)",
            !path.isNullOrEmpty())
        return File(path!!)
    }

    private fun entries(dir: File): List<File> {
        val list = dir.listFiles()?.sortedBy { it.name } ?: emptyList()
        assertFalse("nothing in $dir", list.isEmpty())
        return list
    }

    /** Runs [read]; returns whether the input was refused (with a one-line [IllegalArgumentException]). */
    private fun readOrRefuse(input: String, read: () -> Unit): Boolean {
        try {
            read()
            return false
        } catch (e: IllegalArgumentException) {
            val message = e.message ?: ""
            assertTrue("$input: empty error message", message.isNotEmpty())
            assertFalse("$input: error message over several lines: $message", message.contains('\n'))
            return true
        } catch (e: Throwable) {
            fail("$input: unexpected ${e.javaClass.name}: ${e.message}")
            return true
        }
    }

    /** A case that was read is consistent: sizes of at least 0, arrays of `height * width` cells, boxes of 4 values. */
    private fun checkRead(c: GoldenCase, input: String) {
        assertTrue("$input: read a ${c.height} x ${c.width} case", c.height >= 0 && c.width >= 0)
        val cells = c.height.toLong() * c.width
        assertEquals("$input: prob", cells, c.prob.size.toLong())
        assertEquals("$input: offsets", 4 * cells, c.offsets.size.toLong())
        assertEquals("$input: labels", cells, c.labels.size.toLong())
        assertEquals("$input: boxes", 0, c.boxes.size % 4)
        c.image?.let {
            assertTrue("$input: image ${it.height} x ${it.width}", it.height >= 0 && it.width >= 0)
            assertEquals("$input: image labels", it.height.toLong() * it.width, it.labels.size.toLong())
        }
    }

    @Test
    fun mutatedGoldenCases() {
        val dirs = entries(File(corpus(), "golden"))
        var refused = 0
        for (dir in dirs) {
            if (readOrRefuse(dir.path) { GoldenCase.index(dir).forEach { checkRead(GoldenCase.load(dir, it), dir.path) } }) {
                refused++
            }
            if (readOrRefuse(dir.path) { checkRead(GoldenCase.load(dir, "touching"), dir.path) }) refused++
        }
        println("FuzzCorpusTest: ${dirs.size} mutated golden directories, ${2 * dirs.size} reads, $refused refused")
    }

    @Test
    fun mutatedMetadata() {
        val files = entries(File(corpus(), "metadata"))
        var refused = 0
        for (file in files) {
            if (readOrRefuse(file.path) { BbeMetadata.parse(file.readText(Charsets.UTF_8)) }) refused++
        }
        println("FuzzCorpusTest: ${files.size} mutated metadata texts, $refused refused")
    }

    @Test
    fun mutatedTfliteBytes() {
        val examples = (System.getProperty("bbe.fuzz.examples") ?: "3000").toInt()
        val valid = TinyTflite.model(MetadataTest.SAMPLE)
        val rng = Random(0)
        var refused = 0
        for (i in 0 until examples) {
            val bytes = valid.copyOf()
            repeat(1 + rng.nextInt(8)) {
                val at = rng.nextInt(bytes.size)
                bytes[at] = when (rng.nextInt(3)) {
                    0 -> (bytes[at].toInt() xor (1 shl rng.nextInt(8))).toByte() // one bit flipped
                    1 -> rng.nextInt(256).toByte()
                    else -> 0xff.toByte()
                }
            }
            val input = if (rng.nextBoolean()) bytes.copyOf(rng.nextInt(bytes.size + 1)) else bytes
            if (readOrRefuse("tflite #$i") { TfliteMetadata.readBbeMetadata(ByteBuffer.wrap(input)) }) refused++
        }
        println("FuzzCorpusTest: $examples mutated .tflite models, $refused refused")
    }
}
