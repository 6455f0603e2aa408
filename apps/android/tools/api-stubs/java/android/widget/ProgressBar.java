package android.widget; public class ProgressBar extends android.view.View { public synchronized void setProgress(int p) {} public synchronized int getProgress() { return 0; } }
