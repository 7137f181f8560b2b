package org.bbemobile.grouper

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * Reads `Model.metadata` entries of a `.tflite` flatbuffer (TFLite schema: `Model.buffers` is field 4,
 * `Model.metadata` field 6; `Metadata { name: string; buffer: uint }`; `Buffer { data: [ubyte]; offset: ulong;
 * size: ulong }`, `offset`/`size` used by models over 2 GB whose buffers lie after the flatbuffer).
 *
 * Pure JVM, no TFLite dependency: works on a memory-mapped model file or a byte array. Every bounds problem
 * throws [IllegalArgumentException] ("not a valid TFLite model: ...").
 */
object TfliteMetadata {
    /** The metadata entry name holding the JSON of docs/metadata.md. */
    const val BBE_KEY: String = "bbe"

    /** Every metadata entry `name -> buffer bytes`, in file order (absent buffers give empty arrays). */
    @JvmStatic
    fun readAll(model: ByteBuffer): Map<String, ByteArray> {
        val r = Reader(model)
        val root = r.root()
        val out = LinkedHashMap<String, ByteArray>()
        val metadata = r.vectorField(root, 6) ?: return out
        val buffers = r.vectorField(root, 4)
        val nBuffers = if (buffers == null) 0 else r.u32(buffers)
        for (k in 0 until r.u32(metadata)) {
            val entry = r.indirect(metadata + 4 + 4 * k)
            val name = r.stringField(entry, 0) ?: continue
            val index = r.u32Field(entry, 1)
            val bytes = if (buffers == null || index < 0 || index >= nBuffers) {
                throw IllegalArgumentException(
                    "not a valid TFLite model: metadata ${BenchReport.quote(name)} refers to buffer $index of $nBuffers"
                )
            } else {
                r.bufferBytes(r.indirect(buffers + 4 + 4 * index))
            }
            out[name] = bytes
        }
        return out
    }

    /** The bytes of metadata entry [name], or null when the model has none. */
    @JvmStatic
    fun read(model: ByteBuffer, name: String): ByteArray? = readAll(model)[name]

    /** The `bbe` metadata JSON text (UTF-8), or null when absent. */
    @JvmStatic
    fun readBbeJson(model: ByteBuffer): String? = read(model, BBE_KEY)?.let { String(it, Charsets.UTF_8) }

    /** Same as [readBbeJson] on the file bytes. */
    @JvmStatic
    fun readBbeJson(model: ByteArray): String? = readBbeJson(ByteBuffer.wrap(model))

    /**
     * The parsed `bbe` metadata of a model.
     * @throws IllegalArgumentException when the model has no `bbe` entry or its JSON is invalid.
     */
    @JvmStatic
    fun readBbeMetadata(model: ByteBuffer): BbeMetadata {
        val json = readBbeJson(model) ?: throw IllegalArgumentException(
            "the .tflite model has no \"bbe\" metadata entry: export it with `bbe-mobile convert --target tflite`"
        )
        return BbeMetadata.parse(json)
    }

    private class Reader(model: ByteBuffer) {
        private val b: ByteBuffer = model.duplicate().order(ByteOrder.LITTLE_ENDIAN)
        private val base = model.position()
        private val size = model.remaining()

        fun fail(msg: String): Nothing = throw IllegalArgumentException("not a valid TFLite model: $msg")

        private fun check(at: Long, n: Int) {
            if (at < 0 || at + n > size) fail("offset $at (+$n) outside the $size-byte file")
        }

        fun u16(at: Int): Int {
            check(at.toLong(), 2)
            return b.getShort(base + at).toInt() and 0xFFFF
        }

        /** A uint32 as Int; values over Int.MAX_VALUE fail (never valid offsets or counts here). */
        fun u32(at: Int): Int {
            check(at.toLong(), 4)
            val v = b.getInt(base + at)
            if (v < 0) fail("value ${v.toLong() and 0xFFFFFFFFL} at offset $at too large")
            return v
        }

        fun u64(at: Int): Long {
            check(at.toLong(), 8)
            return b.getLong(base + at)
        }

        fun root(): Int {
            if (size < 8) fail("only $size bytes")
            val id = String(byteArrayOf(b.get(base + 4), b.get(base + 5), b.get(base + 6), b.get(base + 7)), Charsets.ISO_8859_1)
            if (id != "TFL3") fail("file identifier is ${BenchReport.quote(id)}, expected \"TFL3\"")
            return indirect(0)
        }

        /** Follows the uoffset stored at [at]. */
        fun indirect(at: Int): Int {
            val target = at.toLong() + u32(at)
            check(target, 1)
            return target.toInt()
        }

        /** Position of field [index] of the table at [table], or -1 when absent. */
        fun field(table: Int, index: Int): Int {
            check(table.toLong(), 4)
            val vtable = table.toLong() - b.getInt(base + table)
            check(vtable, 4)
            val vt = vtable.toInt()
            val vtSize = u16(vt)
            val slot = 4 + 2 * index
            if (slot + 2 > vtSize) return -1
            val off = u16(vt + slot)
            return if (off == 0) -1 else table + off
        }

        fun vectorField(table: Int, index: Int): Int? {
            val f = field(table, index)
            if (f < 0) return null
            val v = indirect(f)
            val n = u32(v)
            check(v.toLong() + 4, 0)
            check(v.toLong() + 4 + 4L * n, 0)
            return v
        }

        fun stringField(table: Int, index: Int): String? {
            val f = field(table, index)
            if (f < 0) return null
            val s = indirect(f)
            val n = u32(s)
            check(s.toLong() + 4, n)
            val bytes = ByteArray(n)
            for (k in 0 until n) bytes[k] = b.get(base + s + 4 + k)
            return String(bytes, Charsets.UTF_8)
        }

        fun u32Field(table: Int, index: Int): Int {
            val f = field(table, index)
            return if (f < 0) 0 else u32(f)
        }

        fun bufferBytes(buffer: Int): ByteArray {
            val dataField = field(buffer, 0)
            if (dataField >= 0) {
                val v = indirect(dataField)
                val n = u32(v)
                check(v.toLong() + 4, n)
                val out = ByteArray(n)
                val d = b.duplicate()
                d.position(base + v + 4)
                d.get(out)
                return out
            }
            val offField = field(buffer, 1)
            val sizeField = field(buffer, 2)
            if (offField >= 0 && sizeField >= 0) {
                val off = u64(offField)
                val n = u64(sizeField)
                if (off > 1) {
                    if (n < 0 || n > Int.MAX_VALUE) fail("buffer size $n")
                    check(off, n.toInt())
                    val out = ByteArray(n.toInt())
                    val d = b.duplicate()
                    d.position(base + off.toInt())
                    d.get(out)
                    return out
                }
            }
            return ByteArray(0)
        }
    }
}
