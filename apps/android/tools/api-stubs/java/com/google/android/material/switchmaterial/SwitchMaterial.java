package com.google.android.material.switchmaterial; public class SwitchMaterial extends android.widget.CompoundButton {}
