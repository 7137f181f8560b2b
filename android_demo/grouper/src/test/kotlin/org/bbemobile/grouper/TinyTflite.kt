package org.bbemobile.grouper

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Builds small `.tflite` flatbuffers carrying metadata, for the metadata reader's tests and its fuzzing. */
internal object TinyTflite {
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
    fun model(json: String?, identifier: String = "TFL3"): ByteArray {
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
}
