package android.graphics; public class BitmapFactory {
  public static class Options { public Bitmap.Config inPreferredConfig; }
  public static Bitmap decodeStream(java.io.InputStream is, Rect r, Options o) { return null; } }
