package android.view; public abstract class ViewGroup extends View { public int getChildCount() { return 0; } public View getChildAt(int i) { return null; } }
