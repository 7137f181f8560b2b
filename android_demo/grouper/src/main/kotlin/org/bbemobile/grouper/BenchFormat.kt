package org.bbemobile.grouper

/**
 * Timing statistics of one benchmark entry, milliseconds (docs/bench-format.md).
 */
class BenchStats(val medianMs: Double, val p90Ms: Double, val minMs: Double) {
    companion object {
        /**
         * Median, 90th percentile (linear interpolation between order statistics, as NumPy's default) and
         * minimum of [timesMs] (not modified).
         */
        @JvmStatic
        fun of(timesMs: DoubleArray): BenchStats {
            require(timesMs.isNotEmpty()) { "no timings" }
            val s = timesMs.copyOf()
            java.util.Arrays.sort(s)
            return BenchStats(percentile(s, 0.5), percentile(s, 0.9), s[0])
        }

        /** Percentile [q] in [0, 1] of the sorted array [s], linear interpolation. */
        @JvmStatic
        fun percentile(s: DoubleArray, q: Double): Double {
            val rank = q * (s.size - 1)
            val lo = Math.floor(rank).toInt()
            val hi = Math.ceil(rank).toInt()
            return s[lo] + (s[hi] - s[lo]) * (rank - lo)
        }
    }
}

/**
 * One `results[]` entry of a `bbe-bench/1` file.
 *
 * @property kind `grouper`, `model`, `preprocess`, `upsample` or `total`.
 * @property name a golden case name (`bench_129_10`), `camera`, or a model file name.
 * @property extra additional keys written between `name` and the timings (e.g. `height`, `width`, `people`
 *   for grouper cases; `precision`, `compute_units` for models). Values: String, Number, Boolean or null.
 */
class BenchResult(
    val kind: String,
    val name: String,
    val stats: BenchStats,
    val extra: Map<String, Any?> = emptyMap()
)

/**
 * A `bbe-bench/1` benchmark report (docs/bench-format.md), written by the JVM bench (`source =
 * "kotlin-grouper"`, `device = "host"`) and the Android app (`source = "android-app"`, device = the phone model).
 */
class BenchReport(
    val source: String,
    val device: String,
    val runs: Int,
    val warmup: Int,
    val results: List<BenchResult>
) {
    /** The report as pretty-printed JSON text (UTF-8 safe, ends with a newline). */
    fun toJson(): String {
        val sb = StringBuilder()
        sb.append("{\n")
        sb.append("  \"format\": \"bbe-bench/1\",\n")
        sb.append("  \"source\": ").append(quote(source)).append(",\n")
        sb.append("  \"device\": ").append(quote(device)).append(",\n")
        sb.append("  \"runs\": ").append(runs).append(",\n")
        sb.append("  \"warmup\": ").append(warmup).append(",\n")
        sb.append("  \"results\": [")
        for ((q, r) in results.withIndex()) {
            sb.append(if (q == 0) "\n    {" else ",\n    {")
            sb.append("\"kind\": ").append(quote(r.kind)).append(", \"name\": ").append(quote(r.name))
            for ((k, v) in r.extra) sb.append(", ").append(quote(k)).append(": ").append(value(v))
            sb.append(", \"median_ms\": ").append(number(r.stats.medianMs))
            sb.append(", \"p90_ms\": ").append(number(r.stats.p90Ms))
            sb.append(", \"min_ms\": ").append(number(r.stats.minMs))
            sb.append("}")
        }
        sb.append(if (results.isEmpty()) "]\n" else "\n  ]\n")
        sb.append("}\n")
        return sb.toString()
    }

    companion object {
        /** JSON string literal of [s]. */
        @JvmStatic
        fun quote(s: String): String {
            val sb = StringBuilder("\"")
            for (c in s) {
                when {
                    c == '"' -> sb.append("\\\"")
                    c == '\\' -> sb.append("\\\\")
                    c == '\n' -> sb.append("\\n")
                    c == '\r' -> sb.append("\\r")
                    c == '\t' -> sb.append("\\t")
                    c < ' ' -> sb.append(String.format("\\u%04x", c - '\u0000'))
                    else -> sb.append(c)
                }
            }
            return sb.append('"').toString()
        }

        private fun number(d: Double): String {
            require(!d.isNaN() && !d.isInfinite()) { "bench values must be finite, got $d" }
            // Microsecond resolution is plenty; avoid exponent notation for readability.
            return java.math.BigDecimal(d).setScale(6, java.math.RoundingMode.HALF_EVEN).stripTrailingZeros().toPlainString()
        }

        private fun value(v: Any?): String = when (v) {
            null -> "null"
            is String -> quote(v)
            is Boolean -> v.toString()
            is Int, is Long, is Short, is Byte -> v.toString()
            is Number -> number(v.toDouble())
            else -> quote(v.toString())
        }
    }
}
