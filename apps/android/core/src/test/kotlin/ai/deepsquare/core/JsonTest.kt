package ai.deepsquare.core

import org.junit.Assert.assertEquals
import org.junit.Test

class JsonTest {
    @Test
    fun parsesAndWrites() {
        val v = Json.parse("""{"a": [1, -2.5e3, true, null, "x\"\u00e9\n"], "b": {}, "c": 12345678901234567890}""")
        v as Map<*, *>
        assertEquals(listOf(1L, -2500.0, true, null, "x\"\u00e9\n"), v["a"])
        assertEquals(java.math.BigInteger("12345678901234567890"), v["c"])
        assertEquals(v, Json.parse(Json.write(v)))
        assertEquals(v, Json.parse(Json.write(v, indent = null)))
        assertEquals("[1.0E-5,null]", Json.write(listOf(1e-5, Double.NaN), indent = null))
        for (bad in listOf("", "{", "[1,]", "01", "1.", "\"\\x\"", "tru", "{\"a\" 1}", "[1] 2", "\"a\nb\"")) {
            expectError("") { Json.parse(bad) }
        }
        assertEquals("1e+30", Json.pyRepr(1e30))
        assertEquals("['a', True, None]", Json.pyRepr(listOf("a", true, null)))
    }
}
