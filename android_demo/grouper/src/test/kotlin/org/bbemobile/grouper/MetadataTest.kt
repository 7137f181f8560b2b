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

    /**
     * A tiny flatbuffer writer laying objects out front to back (every uoffset points forward, each vtable
     * sits just before its table), enough to build a `.tflite` skeleton with buffers and metadata.
     */
    private class Fb {
        val b: ByteBuffer = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN)
        var pos = 0

        fun align(n: Int) {
            while (pos % n != 0) pos++
        }

        fun u16(v: Int) {
            b.putShort(pos, v.toShort()); pos += 2
        }

        fun u32(v: Int) {
            b.putInt(pos, v); pos += 4
        }

        fun u64(v: Long) {
            b.putLong(pos, v); pos += 8
        }

        /** Writes a vtable then the table's soffset; returns the table position. */
        fun table(tableSize: Int, vararg fieldOffsets: Int): Int {
            align(4)
            if ((pos + 4 + 2 * fieldOffsets.size) % 4 != 0) pos += 2
            val vt = pos
            u16(4 + 2 * fieldOffsets.size)
            u16(tableSize)
            for (f in fieldOffsets) u16(f)
            align(4)
            val t = pos
            u32(t - vt)
            pos = t + tableSize
            return t
        }

        /** Points the uoffset slot at [at] to [target]. */
        fun ref(at: Int, target: Int) {
            b.putInt(at, target - at)
        }

        fun string(s: String): Int {
            align(4)
            val at = pos
            val bytes = s.toByteArray(Charsets.UTF_8)
            u32(bytes.size)
            for (x in bytes) b.put(pos++, x)
            b.put(pos++, 0)
            return at
        }

        fun bytesVector(bytes: ByteArray): Int {
            align(4)
            val at = pos
            u32(bytes.size)
            for (x in bytes) b.put(pos++, x)
            return at
        }

        fun offsetsVector(n: Int): Int {
            align(4)
            val at = pos
            u32(n)
            pos += 4 * n
            return at
        }

        fun bytes(): ByteArray = b.array().copyOf(pos)
    }

    /** model.tflite skeleton: buffers [empty, "other" data, bbe JSON, external], metadata [other, bbe, ext]. */
    private fun tinyModel(json: String?, identifier: String = "TFL3"): ByteArray {
        val fb = Fb()
        fb.u32(0) // root uoffset, patched
        for (x in identifier.toByteArray(Charsets.ISO_8859_1)) fb.b.put(fb.pos++, x)
        // Model: version (field 0) at +4, buffers (4) at +8, metadata (6) at +12.
        val model = fb.table(16, 4, 0, 0, 0, 8, 0, 12)
        fb.ref(0, model)
        fb.b.putInt(model + 4, 3)
        val names = if (json == null) listOf("other") else listOf("other", "bbe", "ext")
        val metaVec = fb.offsetsVector(names.size)
        fb.ref(model + 12, metaVec)
        val metaTables = ArrayList<Int>()
        for (k in names.indices) {
            val t = fb.table(12, 4, 8) // name (0) at +4, buffer (1) at +8
            fb.ref(metaVec + 4 + 4 * k, t)
            fb.b.putInt(t + 8, k + 1)
            metaTables.add(t)
        }
        for ((k, name) in names.withIndex()) fb.ref(metaTables[k] + 4, fb.string(name))
        val bufVec = fb.offsetsVector(4)
        fb.ref(model + 8, bufVec)
        val empty = fb.table(4)
        fb.ref(bufVec + 4, empty)
        val payloads = listOf("other-bytes".toByteArray(), (json ?: "").toByteArray(Charsets.UTF_8))
        val dataTables = ArrayList<Int>()
        for (k in 0 until 2) {
            val t = fb.table(8, 4) // data (0) at +4
            fb.ref(bufVec + 4 + 4 * (k + 1), t)
            dataTables.add(t)
        }
        for (k in 0 until 2) fb.ref(dataTables[k] + 4, fb.bytesVector(payloads[k]))
        // A buffer stored outside the flatbuffer (offset/size, fields 1 and 2), as in models over 2 GB.
        val ext = fb.table(24, 0, 8, 16)
        fb.ref(bufVec + 16, ext)
        fb.align(8)
        val extData = "external!".toByteArray()
        val extAt = fb.pos
        for (x in extData) fb.b.put(fb.pos++, x)
        fb.b.putLong(ext + 8, extAt.toLong())
        fb.b.putLong(ext + 16, extData.size.toLong())
        return fb.bytes()
    }

    @Test
    fun readsBbeMetadataFromTinyTflite() {
        val bytes = tinyModel(SAMPLE)
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
        val none = tinyModel(null)
        assertNull(TfliteMetadata.readBbeJson(none))
        try {
            TfliteMetadata.readBbeMetadata(ByteBuffer.wrap(none))
            fail()
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("no \"bbe\" metadata"))
        }
        for (bad in listOf(tinyModel(SAMPLE, "ONNX"), ByteArray(3), tinyModel(SAMPLE).copyOf(60))) {
            try {
                TfliteMetadata.readAll(ByteBuffer.wrap(bad))
                fail("should reject a ${bad.size}-byte file")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message!!, e.message!!.startsWith("not a valid TFLite model"))
            }
        }
    }
}
