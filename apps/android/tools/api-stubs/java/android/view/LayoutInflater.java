package android.view; public abstract class LayoutInflater { public View inflate(int r, ViewGroup root, boolean attach) { return null; } }
