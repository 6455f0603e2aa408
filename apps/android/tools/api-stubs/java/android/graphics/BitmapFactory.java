package android.graphics; public class BitmapFactory {
  public static class Options { public Bitmap.Config inPreferredConfig; public boolean inScaled; }
  public static Bitmap decodeStream(java.io.InputStream is, Rect r, Options o) { return null; }
  public static Bitmap decodeByteArray(byte[] data, int offset, int length, Options o) { return null; } }
