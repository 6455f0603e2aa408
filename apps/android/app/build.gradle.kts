plugins {
    alias(libs.plugins.android.application) // AGP 9: Kotlin built in, no kotlin-android plugin
}

android {
    namespace = "ai.deepsquare.android"
    compileSdk = 36

    defaultConfig {
        applicationId = "ai.deepsquare.android"
        minSdk = 24 // LiteRT, CameraX and the photo picker back-port all support API 24
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug") // a demo: installable without a keystore
        }
    }

    buildFeatures {
        buildConfig = true
    }

    androidResources {
        noCompress += "tflite" // keep the model stored: LiteRT maps it from the APK
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}


dependencies {
    implementation(project(":core")) // model.json checks, model input, golden self-check, top-k, records

    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.activity.ktx)
    implementation(libs.androidx.exifinterface)
    implementation(libs.material)

    implementation(libs.camerax.core)
    implementation(libs.camerax.camera2)
    implementation(libs.camerax.lifecycle)
    implementation(libs.camerax.view)

    implementation(libs.litert) // CompiledModel API, CPU accelerator (XNNPACK)
    implementation(libs.litert.gpu) // the GPU accelerator
}
