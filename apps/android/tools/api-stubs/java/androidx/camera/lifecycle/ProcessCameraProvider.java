package androidx.camera.lifecycle; public final class ProcessCameraProvider {
  public static com.google.common.util.concurrent.ListenableFuture<ProcessCameraProvider> getInstance(android.content.Context c) { return null; }
  public void unbindAll() {}
  public androidx.camera.core.Camera bindToLifecycle(androidx.lifecycle.LifecycleOwner o, androidx.camera.core.CameraSelector s, androidx.camera.core.UseCase... u) { return null; } }
