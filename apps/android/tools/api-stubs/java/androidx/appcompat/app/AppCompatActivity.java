package androidx.appcompat.app;
public class AppCompatActivity extends android.content.Context implements androidx.lifecycle.LifecycleOwner {
  protected void onCreate(android.os.Bundle b) {} protected void onPause() {} protected void onDestroy() {}
  public void setContentView(int id) {}
  public <T extends android.view.View> T findViewById(int id) { return null; }
  public final void runOnUiThread(Runnable r) {}
  public android.view.LayoutInflater getLayoutInflater() { return null; }
  public final <I, O> androidx.activity.result.ActivityResultLauncher<I> registerForActivityResult(
      androidx.activity.result.contract.ActivityResultContract<I, O> c, androidx.activity.result.ActivityResultCallback<O> cb) { return null; } }
