package ai.deepsquare.core

import com.google.gson.Gson
import com.google.gson.GsonBuilder
import com.google.gson.JsonElement
import com.google.gson.JsonParseException
import com.google.gson.TypeAdapter
import com.google.gson.stream.JsonReader
import com.google.gson.stream.JsonToken
import com.google.gson.stream.JsonWriter
import java.io.StringReader

/**
 * Gson, made strict: standard JSON only (no comments, NaN or trailing text), and a field gets a value
 * of its own kind or an error, never a conversion (Gson alone reads "64" into an Int and 3 into a
 * String). Every type error names the field by its JSON path, e.g. `$.formats.tflite.file`.
 */
object StrictJson {
    /** A JSON value of the wrong kind for its field; [path] is Gson's JSON path of it. */
    class WrongKind(val path: String, val expected: String, val found: String) :
        JsonParseException("$path: expected $expected, found $found")

    private fun found(reader: JsonReader): String =
        when (val token = reader.peek()) {
            JsonToken.NUMBER -> "the number ${reader.nextString()}"
            JsonToken.STRING -> "the text \"${reader.nextString().take(40)}\""
            JsonToken.BOOLEAN -> "the value ${reader.nextBoolean()}"
            JsonToken.NULL -> "null".also { reader.nextNull() }
            JsonToken.BEGIN_ARRAY -> "a list".also { reader.skipValue() }
            JsonToken.BEGIN_OBJECT -> "an object".also { reader.skipValue() }
            else -> token.name.lowercase()
        }

    private fun <T> strict(expected: String, read: (JsonReader) -> T?, write: (JsonWriter, T) -> Unit) =
        object : TypeAdapter<T>() {
            override fun read(reader: JsonReader): T? {
                if (reader.peek() == JsonToken.NULL) {
                    reader.nextNull()
                    return null // a null field is "absent"; the checks say whether it may be
                }
                val path = reader.path
                return read(reader) ?: throw WrongKind(path, expected, found(reader))
            }

            override fun write(writer: JsonWriter, value: T?) {
                if (value == null) writer.nullValue() else write(writer, value)
            }
        }.nullSafe()

    private val WHOLE = Regex("-?(0|[1-9][0-9]{0,9})")

    /**
     * Gson reads a map's keys as values, so its path leaves them out ("$.formats..file"); the keys read are
     * kept here by the path they were read at, to put them back into a message ("$.formats.tflite.file").
     */
    private val mapKeys = ThreadLocal.withInitial { HashMap<String, String>() }

    private fun readText(r: JsonReader): String? {
        if (r.peek() != JsonToken.STRING) return null
        val path = r.path
        return r.nextString().also { if (path.endsWith(".")) mapKeys.get()[path] = it }
    }

    private fun fullPath(path: String): String {
        var p = path
        var i = p.indexOf("..")
        while (i >= 0) {
            val prefix = p.substring(0, i + 1)
            val key = mapKeys.get()[prefix] ?: break
            p = prefix + key + p.substring(i + 1)
            i = p.indexOf("..", prefix.length + key.length)
        }
        return p
    }

    val gson: Gson =
        GsonBuilder()
            .registerTypeAdapter(
                String::class.java,
                strict("text", ::readText, JsonWriter::value),
            )
            .registerTypeAdapter(
                Int::class.javaObjectType,
                strict(
                    "a whole number",
                    { r ->
                        if (r.peek() != JsonToken.NUMBER) {
                            null
                        } else {
                            val path = r.path
                            val text = r.nextString()
                            if (!WHOLE.matches(text)) throw WrongKind(path, "a whole number", "the number $text")
                            text.toLongOrNull()?.takeIf { it in Int.MIN_VALUE..Int.MAX_VALUE }?.toInt()
                                ?: throw WrongKind(path, "a whole number", "the number $text")
                        }
                    },
                    { w, v: Int -> w.value(v.toLong()) },
                ),
            )
            .registerTypeAdapter(
                Double::class.javaObjectType,
                strict(
                    "a number",
                    { r -> if (r.peek() == JsonToken.NUMBER) r.nextDouble() else null },
                    { w, v: Double -> w.value(v) },
                ),
            )
            .registerTypeAdapter(
                Boolean::class.javaObjectType,
                strict(
                    "true or false",
                    { r -> if (r.peek() == JsonToken.BOOLEAN) r.nextBoolean() else null },
                    { w, v: Boolean -> w.value(v) },
                ),
            )
            .registerTypeAdapterFactory(ObjectsOnly)
            .serializeNulls()
            .setPrettyPrinting()
            .disableHtmlEscaping()
            .create()

    /** Gson also reads a list of [key, value] pairs into a Map; here a Map field takes a JSON object only. */
    private object ObjectsOnly : com.google.gson.TypeAdapterFactory {
        override fun <T> create(gson: Gson, type: com.google.gson.reflect.TypeToken<T>): TypeAdapter<T>? {
            if (!Map::class.java.isAssignableFrom(type.rawType)) return null
            val delegate = gson.getDelegateAdapter(this, type)
            return object : TypeAdapter<T>() {
                override fun read(reader: JsonReader): T? {
                    if (reader.peek() == JsonToken.BEGIN_ARRAY) {
                        val path = reader.path
                        throw WrongKind(path, "an object", found(reader))
                    }
                    return delegate.read(reader)
                }

                override fun write(writer: JsonWriter, value: T?) = delegate.write(writer, value)
            }
        }
    }

    /** Why [text] cannot be read as [type], in words: the parse error or the field of the wrong kind. */
    class Failure(val why: String, cause: Throwable) : Exception(why, cause)

    /** Strict standard JSON -> [type] (a class whose fields all have defaults, so Gson fills the absent ones). */
    fun <T> decode(text: String, type: Class<T>): T {
        val reader = JsonReader(StringReader(text))
        reader.isLenient = false
        mapKeys.get().clear()
        try {
            val value = gson.getAdapter(type).read(reader) ?: throw Failure("the file holds null", IllegalStateException())
            val end = try {
                reader.peek() == JsonToken.END_DOCUMENT
            } catch (e: java.io.IOException) {
                false
            }
            if (!end) throw Failure("text after the JSON value", IllegalStateException())
            return value
        } catch (e: WrongKind) {
            throw Failure(
                "field ${fullPath(e.path).removePrefix("$.")} must be ${e.expected}, but it is ${e.found}",
                e,
            )
        } catch (e: Failure) {
            throw e
        } catch (e: com.google.gson.JsonSyntaxException) {
            // An object or list where the other (or a value) belongs: Gson says "Expected X but was Y ... path P".
            val m = KIND_MISMATCH.find(e.message.orEmpty()) ?: throw Failure("not valid JSON (${e.message})", e)
            val (want, got, path) = m.destructured
            val where = fullPath(path).removePrefix("$").removePrefix(".").ifEmpty { null }
            throw Failure(
                (if (where == null) "the file" else "field $where") + " must be ${kind(want)}, but it is ${kind(got)}",
                e,
            )
        } catch (e: Exception) { // MalformedJsonException, IOException, IllegalStateException, NumberFormatException ...
            val detail = (e.message ?: e.javaClass.simpleName).substringBefore("\nSee https")
                .replace("Use JsonReader.setLenient(true) to accept malformed JSON", "malformed JSON")
            throw Failure("not valid JSON ($detail)", e)
        } catch (e: StackOverflowError) {
            throw Failure("not valid JSON (nested too deeply)", IllegalStateException(e))
        }
    }

    private val KIND_MISMATCH = Regex("Expected (\\w+) but was (\\w+) at line \\d+ column \\d+ path (\\S+)")

    private fun kind(token: String): String =
        when (token) {
            "BEGIN_OBJECT" -> "an object"
            "BEGIN_ARRAY" -> "a list"
            "STRING" -> "text"
            "NUMBER" -> "a number"
            "BOOLEAN" -> "true or false"
            else -> token.lowercase()
        }

    /** Strict standard JSON -> Gson's tree (for files this app only passes on, like the records file). */
    fun tree(text: String): JsonElement = decode(text, JsonElement::class.java)

    fun write(value: Any?): String = gson.toJson(value)
}
