package ai.deepsquare.android; public final class BuildConfig { public static final String VERSION_NAME = "0.1.0"; }
