package android.graphics; public final class Bitmap {
  public enum Config { ARGB_8888, RGB_565, HARDWARE }
  public final Config getConfig() { return null; }
  public final int getWidth() { return 0; } public final int getHeight() { return 0; }
  public Bitmap copy(Config c, boolean m) { return null; }
  public void getPixels(int[] p, int off, int stride, int x, int y, int w, int h) {}
  public static Bitmap createScaledBitmap(Bitmap src, int w, int h, boolean filter) { return null; }
  public static Bitmap createBitmap(Bitmap s, int x, int y, int w, int h, Matrix m, boolean f) { return null; } }
