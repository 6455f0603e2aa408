package ai.deepsquare.core

/**
 * The one error the core raises: a bundle, model file, image or setting that cannot be used.
 * The message says what is wrong in words a user can act on; nothing else escapes the core's
 * public functions (index errors, number format errors ... are turned into this).
 */
class DeepSquareError(message: String, cause: Throwable? = null) : Exception(message, cause)

/** An outcome as a value, for UI code that prefers not to catch: `Outcome.of { ... }`. */
sealed class Outcome<out T> {
    data class Ok<T>(val value: T) : Outcome<T>()

    data class Failed(val message: String) : Outcome<Nothing>()

    companion object {
        inline fun <T> of(block: () -> T): Outcome<T> =
            try {
                Ok(block())
            } catch (e: DeepSquareError) {
                Failed(e.message ?: "error")
            }
    }
}
