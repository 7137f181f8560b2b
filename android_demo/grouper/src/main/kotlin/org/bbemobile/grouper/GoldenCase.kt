package org.bbemobile.grouper

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** The optional letterbox block of a golden case: expected labels and boxes on the original image. */
class GoldenImage(
    val height: Int,
    val width: Int,
    val scale: Double,
    val labels: IntArray,
    val boxes: FloatArray
)

/**
 * One golden grouper case of `tests/golden/` (format in `bbe_mobile/golden.py`): inputs, config and the
 * expected output that every implementation must reproduce (labels exactly, boxes and scores within
 * [tolerance]).
 */
class GoldenCase(
    val name: String,
    val height: Int,
    val width: Int,
    val stride: Double,
    val config: GrouperConfig,
    val prob: FloatArray,
    val offsets: FloatArray,
    val labels: IntArray,
    val boxes: FloatArray,
    val scores: FloatArray,
    val tolerance: Double,
    val benchPeople: Int?,
    val image: GoldenImage?
) {
    companion object {
        /** Case names listed by `index.json`, read through [open] (file name -> bytes). */
        @JvmStatic
        fun index(open: (String) -> ByteArray): List<String> {
            val doc = JsonFields(MiniJson.parseObject(String(read(open, "index.json"), Charsets.UTF_8), "index.json"), "index.json")
            return doc.list("cases").map { it as? String ?: throw IllegalArgumentException("index.json: case names must be strings") }
        }

        /** Case names of the golden directory [dir]. */
        @JvmStatic
        fun index(dir: File): List<String> = index { File(dir, it).readBytes() }

        /** Loads case [name] from the golden directory [dir]. */
        @JvmStatic
        fun load(dir: File, name: String): GoldenCase = load(name) { File(dir, it).readBytes() }

        /** Loads case [name] through [open] (file name -> bytes; e.g. Android assets). */
        @JvmStatic
        fun load(name: String, open: (String) -> ByteArray): GoldenCase {
            val what = "$name.json"
            val r = JsonFields(MiniJson.parseObject(String(read(open, what), Charsets.UTF_8), what), what)
            val h = r.int("height")
            val w = r.int("width")
            val n = cellCount(h, w, what)
            val c = r.objectOrNull("config") ?: throw IllegalArgumentException("$what is missing required key \"config\"")
            val boxes = flatBoxes(r.list("boxes"), what)
            val people = if (r.has("bench_people") && r.raw("bench_people") != null) r.int("bench_people") else null
            val img = r.objectOrNull("image")?.let { o ->
                val ir = JsonFields(o, "$what image")
                val h0 = ir.int("height")
                val w0 = ir.int("width")
                GoldenImage(
                    h0, w0, ir.double("scale"),
                    ints(read(open, ir.string("labels_file")), cellCount(h0, w0, "$what image"), ir.string("labels_file")),
                    flatBoxes(ir.list("boxes"), what)
                )
            }
            return GoldenCase(
                name = name,
                height = h,
                width = w,
                stride = r.double("stride"),
                config = GrouperConfig.fromMetadata(c),
                prob = floats(read(open, r.string("prob_file")), n, r.string("prob_file")),
                offsets = floats(read(open, r.string("offsets_file")), 4 * n, r.string("offsets_file")),
                labels = ints(read(open, r.string("labels_file")), n, r.string("labels_file")),
                boxes = boxes,
                scores = floatsOf(r.doubles("scores")),
                tolerance = r.double("tolerance"),
                benchPeople = people,
                image = img
            )
        }

        /**
         * The golden directory: system property `bbe.golden.dir`, else environment `BBE_GOLDEN_DIR`, else the
         * first `tests/golden` holding `index.json` in the working directory or one of its parents.
         */
        @JvmStatic
        fun findDir(): File? {
            val explicit = System.getProperty("bbe.golden.dir") ?: System.getenv("BBE_GOLDEN_DIR")
            if (explicit != null && explicit.isNotEmpty()) return File(explicit)
            var d: File? = File(System.getProperty("user.dir")).absoluteFile
            while (d != null) {
                val g = File(d, "tests/golden")
                if (File(g, "index.json").isFile) return g
                d = d.parentFile
            }
            return null
        }

        /** Largest height or width of a case, in cells (`MAX_GOLDEN_SIDE` of `bbe_mobile/golden.py`; 0 is allowed). */
        const val MAX_SIDE = 4096

        /**
         * [open] of [file], which must name a file inside the golden directory (not empty, not `.` or `..`, no
         * separators or control characters); a bad name or an I/O failure is an [IllegalArgumentException].
         */
        internal fun read(open: (String) -> ByteArray, file: String): ByteArray {
            require(file.isNotEmpty() && file != "." && file != ".." && file.none { it == '/' || it == '\\' || it < ' ' }) {
                "${BenchReport.quote(file)} is not a file name inside the golden directory"
            }
            return try {
                open(file)
            } catch (e: java.io.IOException) {
                throw IllegalArgumentException("cannot read golden file $file: ${e.message}")
            }
        }

        /** `height * width` for sizes in `0..MAX_SIDE`. */
        internal fun cellCount(height: Int, width: Int, what: String): Int {
            require(height in 0..MAX_SIDE && width in 0..MAX_SIDE) {
                "$what: height $height x width $width must both be integers in 0..$MAX_SIDE"
            }
            return height * width
        }

        private fun flatBoxes(list: List<Any?>, what: String): FloatArray {
            val out = FloatArray(4 * list.size)
            for ((k, b) in list.withIndex()) {
                val l = b as? List<*> ?: throw IllegalArgumentException("$what: box $k must be an array")
                require(l.size == 4) { "$what: box $k must have 4 values" }
                for (q in 0 until 4) out[4 * k + q] = ((l[q] as? Double) ?: throw IllegalArgumentException("$what: box $k")).toFloat()
            }
            return out
        }

        private fun floatsOf(d: DoubleArray): FloatArray = FloatArray(d.size) { d[it].toFloat() }

        internal fun floats(bytes: ByteArray, count: Int, file: String): FloatArray {
            require(bytes.size == 4 * count) { "$file has ${bytes.size} bytes, expected ${4 * count}" }
            val out = FloatArray(count)
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out)
            return out
        }

        internal fun ints(bytes: ByteArray, count: Int, file: String): IntArray {
            require(bytes.size == 4 * count) { "$file has ${bytes.size} bytes, expected ${4 * count}" }
            val out = IntArray(count)
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out)
            return out
        }
    }
}
