package org.bbemobile.grouper

/**
 * A small, dependency-free JSON reader (RFC 8259) for the `bbe` metadata and the golden files.
 *
 * Values map to Kotlin as: object -> `Map<String, Any?>` (insertion order kept), array -> `List<Any?>`,
 * string -> [String], number -> [Double], `true`/`false` -> [Boolean], `null` -> `null`. Python's
 * `NaN`, `Infinity` and `-Infinity` tokens (written by `json.dumps` by default) are accepted as numbers.
 * Errors throw [IllegalArgumentException] with the character offset.
 */
object MiniJson {
    /** Parses one JSON value (surrounding whitespace allowed). */
    @JvmStatic
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWs()
        val v = p.value()
        p.skipWs()
        if (p.pos != text.length) p.fail("unexpected trailing characters")
        return v
    }

    /** Parses a JSON object; [what] names the document in error messages. */
    @JvmStatic
    fun parseObject(text: String, what: String = "JSON"): Map<String, Any?> {
        val v = try {
            parse(text)
        } catch (e: IllegalArgumentException) {
            throw IllegalArgumentException("$what is not valid JSON: ${e.message}", e)
        }
        @Suppress("UNCHECKED_CAST")
        return v as? Map<String, Any?> ?: throw IllegalArgumentException("$what must be a JSON object")
    }

    /** Deepest nesting of arrays and objects accepted (the recursive parser's stack stays small). */
    const val MAX_DEPTH = 512

    private class Parser(val s: String) {
        var pos = 0
        private var depth = 0

        fun fail(msg: String): Nothing = throw IllegalArgumentException("$msg at offset $pos")

        fun skipWs() {
            while (pos < s.length) {
                val c = s[pos]
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') pos++ else break
            }
        }

        fun value(): Any? {
            if (pos >= s.length) fail("unexpected end of input")
            val c = s[pos]
            return when {
                c == '{' -> nested { obj() }
                c == '[' -> nested { arr() }
                c == '"' -> str()
                c == 't' -> literal("true", true)
                c == 'f' -> literal("false", false)
                c == 'n' -> literal("null", null)
                c == 'N' -> literal("NaN", Double.NaN)
                c == 'I' -> literal("Infinity", Double.POSITIVE_INFINITY)
                c == '-' && s.startsWith("-Infinity", pos) -> literal("-Infinity", Double.NEGATIVE_INFINITY)
                c == '-' || (c in '0'..'9') -> num()
                else -> fail("unexpected character '$c'")
            }
        }

        /** [parse] one level deeper; fails past [MAX_DEPTH] levels instead of overflowing the stack. */
        private inline fun <T> nested(parse: () -> T): T {
            if (depth >= MAX_DEPTH) fail("arrays and objects nested deeper than $MAX_DEPTH levels")
            depth++
            try {
                return parse()
            } finally {
                depth--
            }
        }

        fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, pos)) fail("invalid literal")
            pos += word.length
            return v
        }

        fun obj(): Map<String, Any?> {
            val m = LinkedHashMap<String, Any?>()
            pos++
            skipWs()
            if (pos < s.length && s[pos] == '}') {
                pos++
                return m
            }
            while (true) {
                skipWs()
                if (pos >= s.length || s[pos] != '"') fail("expected a string key")
                val k = str()
                skipWs()
                if (pos >= s.length || s[pos] != ':') fail("expected ':'")
                pos++
                skipWs()
                m[k] = value()
                skipWs()
                if (pos >= s.length) fail("unterminated object")
                when (s[pos]) {
                    ',' -> pos++
                    '}' -> {
                        pos++
                        return m
                    }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun arr(): List<Any?> {
            val l = ArrayList<Any?>()
            pos++
            skipWs()
            if (pos < s.length && s[pos] == ']') {
                pos++
                return l
            }
            while (true) {
                skipWs()
                l.add(value())
                skipWs()
                if (pos >= s.length) fail("unterminated array")
                when (s[pos]) {
                    ',' -> pos++
                    ']' -> {
                        pos++
                        return l
                    }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun str(): String {
            pos++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (pos >= s.length) fail("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (pos >= s.length) fail("unterminated escape")
                        when (val e = s[pos++]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (pos + 4 > s.length) fail("truncated \\u escape")
                                val code = try {
                                    Integer.parseInt(s.substring(pos, pos + 4), 16)
                                } catch (ex: NumberFormatException) {
                                    fail("invalid \\u escape")
                                }
                                sb.append(code.toChar())
                                pos += 4
                            }
                            else -> fail("invalid escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        fun num(): Double {
            val start = pos
            if (s[pos] == '-') pos++
            if (pos >= s.length) fail("truncated number")
            if (s[pos] == '0') {
                pos++
            } else if (s[pos] in '1'..'9') {
                while (pos < s.length && s[pos] in '0'..'9') pos++
            } else {
                fail("invalid number")
            }
            if (pos < s.length && s[pos] == '.') {
                pos++
                val d = pos
                while (pos < s.length && s[pos] in '0'..'9') pos++
                if (pos == d) fail("digit expected after '.'")
            }
            if (pos < s.length && (s[pos] == 'e' || s[pos] == 'E')) {
                pos++
                if (pos < s.length && (s[pos] == '+' || s[pos] == '-')) pos++
                val d = pos
                while (pos < s.length && s[pos] in '0'..'9') pos++
                if (pos == d) fail("digit expected in exponent")
            }
            return java.lang.Double.parseDouble(s.substring(start, pos))
        }
    }
}

/**
 * Typed, required-key access to a parsed JSON object; every failure is an [IllegalArgumentException]
 * whose message names [what] and the key.
 */
class JsonFields(val obj: Map<String, Any?>, val what: String) {
    /** The raw value of a required key (may be JSON `null`). */
    fun raw(key: String): Any? {
        require(obj.containsKey(key)) { "$what is missing required key \"$key\"" }
        return obj[key]
    }

    fun has(key: String): Boolean = obj.containsKey(key)

    fun double(key: String): Double =
        raw(key) as? Double ?: throw IllegalArgumentException("$what key \"$key\" must be a number, got ${show(obj[key])}")

    fun int(key: String): Int {
        val d = double(key)
        require(d == Math.rint(d) && d >= Int.MIN_VALUE && d <= Int.MAX_VALUE) {
            "$what key \"$key\" must be an integer, got $d"
        }
        return d.toInt()
    }

    fun string(key: String): String =
        raw(key) as? String ?: throw IllegalArgumentException("$what key \"$key\" must be a string, got ${show(obj[key])}")

    /** A string, or any other scalar written as text (for descriptive keys such as a version). */
    fun text(key: String): String {
        val v = raw(key)
        return when (v) {
            is String -> v
            is Double -> if (v == Math.rint(v) && Math.abs(v) < 1e15) v.toLong().toString() else v.toString()
            null -> throw IllegalArgumentException("$what key \"$key\" must not be null")
            else -> v.toString()
        }
    }

    fun list(key: String): List<Any?> =
        raw(key) as? List<Any?> ?: throw IllegalArgumentException("$what key \"$key\" must be an array, got ${show(obj[key])}")

    fun doubles(key: String): DoubleArray {
        val l = list(key)
        val out = DoubleArray(l.size)
        for (i in l.indices) {
            out[i] = l[i] as? Double
                ?: throw IllegalArgumentException("$what key \"$key\"[$i] must be a number, got ${show(l[i])}")
        }
        return out
    }

    @Suppress("UNCHECKED_CAST")
    fun objectOrNull(key: String): Map<String, Any?>? {
        if (!obj.containsKey(key)) return null
        val v = obj[key] ?: return null
        return v as? Map<String, Any?> ?: throw IllegalArgumentException("$what key \"$key\" must be an object")
    }

    private fun show(v: Any?): String = when (v) {
        null -> "null"
        is String -> BenchReport.quote(v)
        is Map<*, *> -> "an object"
        is List<*> -> "an array"
        else -> v.toString()
    }
}
