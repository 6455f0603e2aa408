package android.widget; public abstract class CompoundButton extends Button { public boolean isChecked() { return false; } public void setChecked(boolean c) {} }
