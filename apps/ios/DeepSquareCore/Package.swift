// swift-tools-version: 5.9
// The app's pure-Swift core: bundle metadata, top-k, softmax, latency statistics, the timing
// plan and the benchmark record. Foundation only, so `swift test` runs on macOS and Linux.
import PackageDescription

let package = Package(
    name: "DeepSquareCore",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "DeepSquareCore", targets: ["DeepSquareCore"]),
    ],
    targets: [
        .target(name: "DeepSquareCore"),
        .testTarget(name: "DeepSquareCoreTests", dependencies: ["DeepSquareCore"]),
    ]
)
