// Root build file: plugins are declared here (not applied) so that both modules share one version.
// AGP 9 compiles the app's Kotlin itself (built-in Kotlin): no org.jetbrains.kotlin.android plugin.
plugins {
    alias(libs.plugins.android.application) apply false
    alias(libs.plugins.kotlin.jvm) apply false
}
