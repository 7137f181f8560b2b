package org.bbemobile.grouper

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Invalid inputs raise IllegalArgumentException with a message naming the culprit. */
class ErrorTest {
    private fun expectIae(vararg fragments: String, block: () -> Unit) {
        try {
            block()
        } catch (e: IllegalArgumentException) {
            val msg = e.message ?: ""
            for (f in fragments) assertTrue("message \"$msg\" should contain \"$f\"", msg.contains(f))
            return
        }
        fail("expected IllegalArgumentException containing ${fragments.toList()}")
    }

    private val h = 4
    private val w = 5
    private fun prob() = FloatArray(h * w) { 0.1f * (it % 10) }
    private fun offsets() = FloatArray(4 * h * w)

    @Test
    fun nonFiniteProbIsNamed() {
        for (bad in floatArrayOf(Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY)) {
            val p = prob()
            p[7] = bad
            expectIae("prob", "NaN or inf", "index 7") { Grouper().group(p, offsets(), h, w, 4.0) }
        }
    }

    @Test
    fun nonFiniteOffsetsAreNamed() {
        for (bad in floatArrayOf(Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY)) {
            val o = offsets()
            o[4 * h * w - 1] = bad
            expectIae("offsets", "NaN or inf") { Grouper().group(prob(), o, h, w, 4.0) }
        }
    }

    @Test
    fun nonFiniteInBuffersIsNamed() {
        val o = ByteBuffer.allocateDirect(16 * h * w).order(ByteOrder.BIG_ENDIAN).asFloatBuffer()
        o.put(3, Float.NaN)
        expectIae("offsets", "NaN or inf") { Grouper().group(FloatBufferOf(prob()), o, h, w, 4.0) }
    }

    @Suppress("FunctionName")
    private fun FloatBufferOf(a: FloatArray) = java.nio.FloatBuffer.wrap(a)

    @Test
    fun mismatchedSizes() {
        expectIae("prob", "19", "H*W = 4*5 = 20") { Grouper().group(FloatArray(19), offsets(), h, w, 4.0) }
        expectIae("offsets", "79", "H*W*4 = 4*5*4 = 80") { Grouper().group(prob(), FloatArray(79), h, w, 4.0) }
        expectIae("offsets", "H*W*4") { Grouper().group(FloatBufferOf(prob()), FloatBufferOf(FloatArray(20)), h, w, 4.0) }
        expectIae("height and width") { Grouper().group(FloatArray(0), FloatArray(0), -1, 0, 4.0) }
        expectIae("labelsOut") { Grouper().group(prob(), offsets(), h, w, 4.0, IntArray(3)) }
    }

    @Test
    fun invalidStride() {
        for (s in doubleArrayOf(0.0, -4.0, Double.NaN, Double.POSITIVE_INFINITY)) {
            expectIae("stride") { Grouper().group(prob(), offsets(), h, w, s) }
        }
    }

    @Test
    fun invalidConfig() {
        expectIae("t_c", "[0, 1]", "1.5") { GrouperConfig(tC = 1.5) }
        expectIae("t_nms") { GrouperConfig(tNms = -0.1) }
        expectIae("t_fg") { GrouperConfig(tFg = Double.NaN) }
        expectIae("t_iou") { GrouperConfig(tIou = 2.0) }
        expectIae("max_instances", "-1") { GrouperConfig(maxInstances = -1) }
        expectIae("anchor_w") { GrouperConfig(anchorW = 0.0) }
        expectIae("anchor_h") { GrouperConfig(anchorH = Double.POSITIVE_INFINITY) }
        expectIae("max_log_scale") { GrouperConfig(maxLogScale = -4.0) }
    }

    @Test
    fun metadataMissingKeyIsNamed() {
        for (key in GrouperConfig.METADATA_KEYS) {
            val obj = LinkedHashMap<String, Any?>(MiniJson.parseObject(MetadataTest.SAMPLE))
            obj.remove(key)
            expectIae("missing required key \"$key\"") { GrouperConfig.fromMetadata(obj) }
            expectIae("missing required key \"$key\"") { BbeMetadata.fromMap(obj) }
        }
        val obj = LinkedHashMap<String, Any?>(MiniJson.parseObject(MetadataTest.SAMPLE))
        obj.remove("input_size")
        expectIae("missing required key \"input_size\"") { BbeMetadata.fromMap(obj) }
    }

    @Test
    fun metadataWrongTypesAndValues() {
        expectIae("\"t_c\" must be a number", "\"high\"") {
            GrouperConfig.fromMetadataJson(MetadataTest.SAMPLE.replace("\"t_c\": 0.6", "\"t_c\": \"high\""))
        }
        expectIae("max_instances", "integer") {
            GrouperConfig.fromMetadataJson(MetadataTest.SAMPLE.replace("\"max_instances\": 20", "\"max_instances\": 2.5"))
        }
        expectIae("t_nms", "[0, 1]") {
            GrouperConfig.fromMetadataJson(MetadataTest.SAMPLE.replace("\"t_nms\": 0.4", "\"t_nms\": 4"))
        }
        expectIae("format") { BbeMetadata.parse(MetadataTest.SAMPLE.replace("bbe-mobile/1", "bbe-mobile/2")) }
        expectIae("not valid JSON") { GrouperConfig.fromMetadataJson("{\"t_c\": 0.6,") }
        expectIae("must be a JSON object") { GrouperConfig.fromMetadataJson("[1, 2]") }
    }

    @Test
    fun upsamplingArguments() {
        expectIae("scale") { Upsampling.boxesToImage(FloatArray(4), 0.0, 10, 10) }
        expectIae("4 values per box") { Upsampling.boxesToImage(FloatArray(3), 1.0, 10, 10) }
        expectIae("labels has 3 values") { Upsampling.labelsToImage(IntArray(3), 2, 2, 4.0, 1.0, 5, 5) }
        expectIae("image must be non-empty") { Letterbox(0, 10, 512) }
        assertEquals(25, Upsampling.labelsToImage(IntArray(0), 0, 0, 4.0, 1.0, 5, 5).size)
    }
}
