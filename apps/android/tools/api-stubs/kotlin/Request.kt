package androidx.activity.result

import androidx.activity.result.contract.ActivityResultContracts.PickVisualMedia

class PickVisualMediaRequest internal constructor() {
    var mediaType: PickVisualMedia.VisualMediaType? = null
}

fun PickVisualMediaRequest(mediaType: PickVisualMedia.VisualMediaType): PickVisualMediaRequest =
    PickVisualMediaRequest().also { it.mediaType = mediaType }
