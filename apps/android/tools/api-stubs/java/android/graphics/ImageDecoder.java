package android.graphics; public final class ImageDecoder {
  public static final int ALLOCATOR_SOFTWARE = 1;
  public static abstract class Source {}
  public static class ImageInfo {}
  public interface OnHeaderDecodedListener { void onHeaderDecoded(ImageDecoder d, ImageInfo i, Source s); }
  public void setAllocator(int a) {} public int getAllocator() { return 0; }
  public static Source createSource(android.content.ContentResolver cr, android.net.Uri u) { return null; }
  public static Bitmap decodeBitmap(Source s, OnHeaderDecodedListener l) throws java.io.IOException { return null; } }
