package org.bbemobile.grouper

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** The JSON reader, the `bbe` metadata object and the TFLite metadata reader. */
class MetadataTest {
    companion object {
        /** The example object of docs/metadata.md. */
        const val SAMPLE: String = """{
  "format": "bbe-mobile/1",
  "input_size": 512,
  "input_name": "image",
  "input_layout": "NHWC",
  "input_range": [0.0, 255.0],
  "input_channels": "RGB",
  "input_dtype": "float32",
  "input_quantization": null,
  "stride": 4,
  "anchor_w": 78.38367176906169,
  "anchor_h": 117.57550765359254,
  "max_log_scale": 4.0,
  "t_c": 0.6, "t_nms": 0.4, "t_fg": 0.5, "t_iou": 0.3, "max_instances": 20,
  "prob_output": "person_prob",
  "offsets_output": "box_offsets",
  "prob_activation": "none",
  "output_layout": "NHWC",
  "model_name": "bbe_mnv2_035",
  "model_version": "1",
  "toolkit_version": "0.1.0",
  "precision": "fp32"
}"""
    }

    @Test
    fun parsesJsonValues() {
        val v = MiniJson.parse(" {\"a\": [1, -2.5e2, 0.125E+1, true, false, null, \"x\\\"\\u00e9\\n\"], \"b\": {}, \"c\": [], \"d\": NaN, \"e\": -Infinity} ")
        val m = v as Map<*, *>
        assertEquals(listOf(1.0, -250.0, 1.25, true, false, null, "x\"\u00e9\n"), m["a"])
        assertEquals(emptyMap<String, Any?>(), m["b"])
        assertEquals(emptyList<Any?>(), m["c"])
        assertTrue((m["d"] as Double).isNaN())
        assertEquals(Double.NEGATIVE_INFINITY, m["e"])
        assertEquals(listOf("a", "b", "c", "d", "e"), m.keys.toList())
        for (bad in listOf("", "{", "{\"a\" 1}", "[1,]", "{\"a\": 1,}", "01", "1.", "\"abc", "tru", "[1] x", "{a: 1}")) {
            try {
                MiniJson.parse(bad)
                fail("should reject <$bad>")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message!!.contains("offset"))
            }
        }
    }

    @Test
    fun parsesDoubleExactly() {
        assertEquals(GrouperConfig.DEFAULT_ANCHOR_W, MiniJson.parse("78.38367176906169") as Double, 0.0)
        assertEquals(GrouperConfig.DEFAULT_ANCHOR_H, MiniJson.parse("117.57550765359255") as Double, 0.0)
    }

    @Test
    fun configFromMetadata() {
        val c = GrouperConfig.fromMetadataJson(SAMPLE.replace("\"t_iou\": 0.3", "\"t_iou\": 0.25").replace("\"max_instances\": 20", "\"max_instances\": 7"))
        assertEquals(GrouperConfig(tIou = 0.25, maxInstances = 7, anchorH = 117.57550765359254), c)
    }

    /**
     * `mode`, `refine_rounds` and `refine_statistic` are optional (the sample predates them: the paper's mode,
     * median), read and checked.
     */
    @Test
    fun grouperModeKeys() {
        assertEquals(GrouperMode.PAPER, GrouperConfig.fromMetadataJson(SAMPLE).mode)
        val v2 = SAMPLE.replace("\"max_instances\": 20", "\"max_instances\": 20, \"mode\": \"refine\", \"refine_rounds\": 2")
        val c = GrouperConfig.fromMetadataJson(v2)
        assertEquals(GrouperMode.REFINE, c.mode)
        assertEquals(2, c.refineRounds)
        assertEquals(GrouperMode.REFINE, BbeMetadata.parse(v2).grouper.mode)
        assertEquals(RefineStatistic.MEDIAN, c.refineStatistic)
        val mean = v2.replace("\"refine_rounds\": 2", "\"refine_rounds\": 2, \"refine_statistic\": \"mean\"")
        assertEquals(RefineStatistic.MEAN, GrouperConfig.fromMetadataJson(mean).refineStatistic)
        for ((bad, key) in listOf(v2.replace("\"refine\"", "\"median\"") to "mode",
                                   v2.replace("\"refine_rounds\": 2", "\"refine_rounds\": 0") to "refine_rounds",
                                   mean.replace("\"mean\"", "\"mode\"") to "refine_statistic")) {
            try {
                GrouperConfig.fromMetadataJson(bad)
                fail("accepted a bad $key")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message, e.message!!.contains(key))
            }
        }
    }

    @Test
    fun fullMetadata() {
        val m = BbeMetadata.parse(SAMPLE)
        assertEquals(512, m.inputSize)
        assertEquals(4.0, m.stride, 0.0)
        assertEquals(128, m.outputSize)
        assertNull(m.inputQuantization)
        assertEquals(listOf(0.0, 255.0), m.inputRange)
        assertEquals("person_prob", m.probOutput)
        assertEquals("1", m.modelVersion)
        val q = BbeMetadata.parse(SAMPLE.replace("\"input_quantization\": null", "\"input_quantization\": [0.5, -3]").replace("\"float32\"", "\"int8\""))
        assertEquals(BbeMetadata.Quantization(0.5, -3), q.inputQuantization)
        assertEquals("int8", q.inputDtype)
    }

    @Test
    fun readsBbeMetadataFromTinyTflite() {
        val bytes = TinyTflite.model(SAMPLE)
        val all = TfliteMetadata.readAll(ByteBuffer.wrap(bytes))
        assertEquals(listOf("other", "bbe", "ext"), all.keys.toList())
        assertArrayEquals("other-bytes".toByteArray(), all["other"])
        assertArrayEquals("external!".toByteArray(), all["ext"])
        assertEquals(SAMPLE, TfliteMetadata.readBbeJson(bytes))
        // A direct, big-endian, offset buffer (a memory-mapped file at some position) reads the same.
        val direct = ByteBuffer.allocateDirect(bytes.size + 3).order(ByteOrder.BIG_ENDIAN)
        direct.put(byteArrayOf(9, 9, 9)).put(bytes)
        direct.position(3)
        val m = TfliteMetadata.readBbeMetadata(direct)
        assertEquals(512, m.inputSize)
        assertEquals(GrouperConfig(anchorH = 117.57550765359254), m.grouper)
        assertEquals(3, direct.position())
    }

    @Test
    fun missingOrInvalid() {
        val none = TinyTflite.model(null)
        assertNull(TfliteMetadata.readBbeJson(none))
        try {
            TfliteMetadata.readBbeMetadata(ByteBuffer.wrap(none))
            fail()
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("no \"bbe\" metadata"))
        }
        for (bad in listOf(TinyTflite.model(SAMPLE, "ONNX"), ByteArray(3), TinyTflite.model(SAMPLE).copyOf(60))) {
            try {
                TfliteMetadata.readAll(ByteBuffer.wrap(bad))
                fail("should reject a ${bad.size}-byte file")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message!!, e.message!!.startsWith("not a valid TFLite model"))
            }
        }
    }
}
