package android.content;
public abstract class Context {
  public static final int MODE_PRIVATE = 0;
  public android.content.res.AssetManager getAssets() { return null; }
  public SharedPreferences getSharedPreferences(String n, int m) { return null; }
  public java.io.File getExternalFilesDir(String t) { return null; }
  public java.io.File getFilesDir() { return null; }
  public final String getString(int id) { return null; }
  public final String getString(int id, Object... a) { return null; }
  public ContentResolver getContentResolver() { return null; }
  public void startActivity(Intent i) {}
}
