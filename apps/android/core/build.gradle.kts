// The app's pure-Kotlin core: no Android dependency, so it also builds and tests on a plain JVM
// (core/run-tests.sh does that with kotlinc + JUnit 4, without Gradle).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // The golden files shared by the app cores; the tests also find them relative to this module.
    systemProperty("golden.dir", rootDir.resolve("../testdata/golden").absolutePath)
    providers.gradleProperty("tfliteFile").orNull?.let { systemProperty("tflite.file", it) }
}
