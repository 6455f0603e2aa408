import Foundation
import XCTest

/// apps/testdata/golden (shared with the Android core), read in place: this file is
/// apps/ios/DeepSquareCore/Tests/DeepSquareCoreTests/Golden.swift.
enum Golden {
    static let relativePath = "../../../../testdata/golden"

    static var folder: URL {
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .appendingPathComponent(relativePath)
            .standardizedFileURL
    }

    static func data(_ name: String) throws -> Data {
        return try Data(contentsOf: folder.appendingPathComponent(name))
    }

    static func load() throws -> GoldenFile {
        return try JSONDecoder().decode(GoldenFile.self, from: data("golden.json"))
    }
}

struct GoldenFile: Decodable {
    let schema: String
    let bundle: GoldenBundle
    let photos: [GoldenPhoto]
}

struct GoldenBundle: Decodable {
    let arch: String
    let variant: String
    let inputSize: Int
    let mean: [Double]
    let std: [Double]
    let classes: [String]

    enum CodingKeys: String, CodingKey {
        case arch
        case variant
        case inputSize = "input_size"
        case mean
        case std
        case classes
    }
}

struct GoldenPhoto: Decodable {
    let name: String
    let png: String
    let width: Int
    let height: Int
    let logits: [Double]
    let probabilities: [Double]
    let top5: [GoldenTop]
}

struct GoldenTop: Decodable {
    let index: Int
    let label: String
    let probability: Double
}
