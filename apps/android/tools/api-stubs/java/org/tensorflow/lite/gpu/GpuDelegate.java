package org.tensorflow.lite.gpu; public class GpuDelegate implements org.tensorflow.lite.Delegate {
  public static final class Options {}
  public GpuDelegate(Options o) {} public GpuDelegate() {}
  public long getNativeHandle() { return 0; } public void close() {} }
