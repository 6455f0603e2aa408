package android.graphics; public class Matrix { public void setScale(float a, float b) {} public void setRotate(float d) {} public boolean postScale(float a, float b) { return true; } }
