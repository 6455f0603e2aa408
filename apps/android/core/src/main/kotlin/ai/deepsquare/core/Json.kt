package ai.deepsquare.core

import java.math.BigInteger

/**
 * A minimal JSON reader and writer (RFC 8259), no dependencies.
 *
 * Values: null, Boolean, Long (integers that fit) or BigInteger, Double (numbers with a fraction
 * or exponent), String, List<Any?>, Map<String, Any?> (insertion-ordered). Integers and floats
 * stay distinct, as in Python's json module, so `"input_size": 64.0` is rejected like there.
 */
object Json {
    private const val MAX_DEPTH = 512

    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWs()
        val value = p.value(0)
        p.skipWs()
        if (p.i != text.length) p.fail("extra data")
        return value
    }

    private class Parser(val s: String) {
        var i = 0

        fun fail(what: String): Nothing {
            var line = 1
            var col = 1
            for (k in 0 until minOf(i, s.length)) {
                if (s[k] == '\n') {
                    line++
                    col = 1
                } else {
                    col++
                }
            }
            throw DeepSquareError("$what: line $line column $col (char $i)")
        }

        fun skipWs() {
            while (i < s.length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
        }

        fun value(depth: Int): Any? {
            if (depth > MAX_DEPTH) fail("nested too deeply")
            if (i >= s.length) fail("Expecting value")
            return when (val c = s[i]) {
                '{' -> obj(depth)
                '[' -> arr(depth)
                '"' -> str()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c in '0'..'9') num() else fail("Expecting value")
            }
        }

        fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("Expecting value")
            i += word.length
            return v
        }

        fun obj(depth: Int): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            i++
            skipWs()
            if (i < s.length && s[i] == '}') {
                i++
                return out
            }
            while (true) {
                skipWs()
                if (i >= s.length || s[i] != '"') fail("Expecting property name enclosed in double quotes")
                val key = str()
                skipWs()
                if (i >= s.length || s[i] != ':') fail("Expecting ':' delimiter")
                i++
                skipWs()
                out[key] = value(depth + 1)
                skipWs()
                if (i >= s.length) fail("Expecting ',' delimiter")
                when (s[i]) {
                    ',' -> i++
                    '}' -> {
                        i++
                        return out
                    }
                    else -> fail("Expecting ',' delimiter")
                }
            }
        }

        fun arr(depth: Int): List<Any?> {
            val out = ArrayList<Any?>()
            i++
            skipWs()
            if (i < s.length && s[i] == ']') {
                i++
                return out
            }
            while (true) {
                skipWs()
                out.add(value(depth + 1))
                skipWs()
                if (i >= s.length) fail("Expecting ',' delimiter")
                when (s[i]) {
                    ',' -> i++
                    ']' -> {
                        i++
                        return out
                    }
                    else -> fail("Expecting ',' delimiter")
                }
            }
        }

        fun str(): String {
            val start = i
            i++
            val sb = StringBuilder()
            while (true) {
                if (i >= s.length) {
                    i = start
                    fail("Unterminated string starting at")
                }
                val c = s[i++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (i >= s.length) fail("Invalid \\escape")
                        when (val e = s[i++]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000c')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) fail("Invalid \\uXXXX escape")
                                val hex = s.substring(i, i + 4)
                                if (!hex.all { it in '0'..'9' || it in 'a'..'f' || it in 'A'..'F' }) {
                                    fail("Invalid \\uXXXX escape")
                                }
                                sb.append(hex.toInt(16).toChar())
                                i += 4
                            }
                            else -> {
                                i--
                                fail("Invalid \\escape ${e}")
                            }
                        }
                    }
                    c < ' ' -> {
                        i--
                        fail("Invalid control character at")
                    }
                    else -> sb.append(c)
                }
            }
        }

        fun num(): Any {
            val start = i
            if (s[i] == '-') i++
            if (i >= s.length) fail("Expecting value")
            if (s[i] == '0') {
                i++
            } else if (s[i] in '1'..'9') {
                while (i < s.length && s[i] in '0'..'9') i++
            } else {
                fail("Expecting value")
            }
            var isFloat = false
            if (i < s.length && s[i] == '.') {
                isFloat = true
                i++
                if (i >= s.length || s[i] !in '0'..'9') fail("Expecting digits after '.'")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                isFloat = true
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                if (i >= s.length || s[i] !in '0'..'9') fail("Expecting exponent digits")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val text = s.substring(start, i)
            if (isFloat) return text.toDouble()
            return text.toLongOrNull() ?: BigInteger(text)
        }
    }

    /** Compact (indent = null) or indented JSON; non-finite doubles are written as null. */
    fun write(value: Any?, indent: Int? = 2): String {
        val sb = StringBuilder()
        writeTo(sb, value, indent, 0)
        return sb.toString()
    }

    private fun newline(sb: StringBuilder, indent: Int?, level: Int) {
        if (indent != null) {
            sb.append('\n')
            repeat(indent * level) { sb.append(' ') }
        }
    }

    private fun writeTo(sb: StringBuilder, v: Any?, indent: Int?, level: Int) {
        when (v) {
            null -> sb.append("null")
            is Boolean -> sb.append(if (v) "true" else "false")
            is Double -> sb.append(if (v.isFinite()) v.toString() else "null")
            is Float -> writeTo(sb, v.toDouble(), indent, level)
            is Int, is Long, is Short, is Byte, is BigInteger -> sb.append(v.toString())
            is String -> quote(sb, v)
            is Map<*, *> -> {
                if (v.isEmpty()) {
                    sb.append("{}")
                    return
                }
                sb.append('{')
                var first = true
                for ((k, item) in v) {
                    if (!first) sb.append(',')
                    first = false
                    newline(sb, indent, level + 1)
                    quote(sb, k.toString())
                    sb.append(if (indent != null) ": " else ":")
                    writeTo(sb, item, indent, level + 1)
                }
                newline(sb, indent, level)
                sb.append('}')
            }
            is Iterable<*> -> {
                val items = v.toList()
                if (items.isEmpty()) {
                    sb.append("[]")
                    return
                }
                sb.append('[')
                items.forEachIndexed { n, item ->
                    if (n > 0) sb.append(',')
                    newline(sb, indent, level + 1)
                    writeTo(sb, item, indent, level + 1)
                }
                newline(sb, indent, level)
                sb.append(']')
            }
            is DoubleArray -> writeTo(sb, v.toList(), indent, level)
            is FloatArray -> writeTo(sb, v.map { it.toDouble() }, indent, level)
            is IntArray -> writeTo(sb, v.toList(), indent, level)
            is Array<*> -> writeTo(sb, v.toList(), indent, level)
            else -> throw DeepSquareError("cannot write a ${v::class.simpleName} as JSON")
        }
    }

    private fun quote(sb: StringBuilder, s: String) {
        sb.append('"')
        for (c in s) {
            when {
                c == '"' -> sb.append("\\\"")
                c == '\\' -> sb.append("\\\\")
                c == '\n' -> sb.append("\\n")
                c == '\r' -> sb.append("\\r")
                c == '\t' -> sb.append("\\t")
                c < ' ' -> sb.append(String.format("\\u%04x", c.code))
                else -> sb.append(c)
            }
        }
        sb.append('"')
    }

    /** Python's repr() of a JSON value, for error messages worded like runtime/bundle.py's. */
    fun pyRepr(v: Any?): String =
        when (v) {
            null -> "None"
            is Boolean -> if (v) "True" else "False"
            is Double -> pyFloat(v)
            is String -> "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
            is Map<*, *> -> v.entries.joinToString(", ", "{", "}") { (k, x) -> "${pyRepr(k)}: ${pyRepr(x)}" }
            is List<*> -> v.joinToString(", ", "[", "]") { pyRepr(it) }
            else -> v.toString()
        }

    private fun pyFloat(d: Double): String {
        if (d.isNaN()) return "nan"
        if (d.isInfinite()) return if (d > 0) "inf" else "-inf"
        val s = d.toString() // Kotlin: 64.0, 1.0E30, 1.0E-5
        val e = s.indexOf('E')
        if (e < 0) return s
        val mantissa = s.substring(0, e).removeSuffix(".0")
        val exp = s.substring(e + 1).toInt()
        return mantissa + "e" + (if (exp < 0) "-" else "+") + String.format("%02d", kotlin.math.abs(exp))
    }

    /** Python's type(x).__name__ for a JSON value. */
    fun pyType(v: Any?): String =
        when (v) {
            null -> "NoneType"
            is Boolean -> "bool"
            is Long, is Int, is BigInteger -> "int"
            is Double -> "float"
            is String -> "str"
            is List<*> -> "list"
            is Map<*, *> -> "dict"
            else -> v::class.simpleName ?: "object"
        }
}
