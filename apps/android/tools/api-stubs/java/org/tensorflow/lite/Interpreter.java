package org.tensorflow.lite; public final class Interpreter implements AutoCloseable {
  public static class Options { public Options setNumThreads(int n) { return this; } public Options setUseXNNPACK(boolean u) { return this; } public Options addDelegate(Delegate d) { return this; } }
  public Interpreter(java.nio.ByteBuffer b, Options o) {}
  public void run(Object in, Object out) {}
  public Tensor getInputTensor(int i) { return null; }
  public void close() {} }
