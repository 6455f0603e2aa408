import Foundation
import XCTest

/// A small, valid deepsquare-bundle/2 model.json (the fields `deepsquare export --input uint8` writes), as a
/// dictionary the tests change one field at a time.
enum Fixtures {
    static let classes = (0..<10).map { String($0) }

    static func modelJSON() -> [String: Any] {
        return [
            "schema": "deepsquare-bundle/2",
            "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "arch": "vanilla_cnn",
            "variant": "sp+ss",
            "classes": classes,
            "input_size": 8,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "pixel_range": "0-1",
            "input": "uint8",
            "formats": [
                "coreml": [
                    "file": "model.mlpackage", "layout": "image", "input_name": "image", "output_name": "classLabel",
                    "precision": "fp32", "input_dtype": "image", "extra": ["outputs": "probabilities"],
                ],
                "tflite": [
                    "file": "model.tflite", "layout": "NHWC", "input_name": "pixels", "output_name": "logits",
                    "precision": "fp32", "input_dtype": "uint8", "extra": ["outputs": "logits"],
                ],
            ],
            "provenance": ["epoch": 1, "data": "digits"],
            "sha256": ["model.tflite": String(repeating: "ab", count: 32)],
            "golden": "golden.json",
            "samples": "samples.json",
        ]
    }

    static func data(_ object: Any) throws -> Data {
        return try JSONSerialization.data(withJSONObject: object)
    }

    /// golden.json for the fixture bundle: Core ML probabilities (not measured) with a tolerance.
    static func goldenJSON(values: [Double], outputs: String = "probabilities", tolerance: Double = 0.01) -> [String: Any] {
        return [
            "schema": "deepsquare-golden/1",
            "image": "golden.png",
            "label": "3",
            "reference": ["logits": values, "top5": [["3", 0.5]]],
            "formats": [
                "coreml": [
                    "outputs": outputs, "values": values, "top5": [["3", 0.5]], "tolerance": tolerance,
                    "measured": false,
                ],
            ],
        ]
    }
}
