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
    implementation(libs.gson) // model.json, golden.json, records
    testImplementation(libs.junit)
}

tasks.test {
    // The committed contract files of a real bundle (apps/testdata/bundle); -PbundleDir=BUNDLE: an exported bundle.
    systemProperty("testdata.bundle", rootDir.resolve("../testdata/bundle").absolutePath)
    providers.gradleProperty("bundleDir").orNull?.let { systemProperty("bundle.dir", it) }
}
