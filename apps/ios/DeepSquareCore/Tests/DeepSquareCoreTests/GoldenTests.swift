import DeepSquareCore
import Foundation
import XCTest

final class GoldenTests: XCTestCase {
    func testGoldenFolderIsFound() throws {
        let golden = try Golden.load()
        XCTAssertEqual(golden.schema, "deepsquare-golden/1")
        XCTAssertFalse(golden.photos.isEmpty)
        for photo in golden.photos {
            let png = try Golden.data(photo.png)
            XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], photo.png)
        }
    }

    func testModelJSONEqualsGoldenBundle() throws {
        let golden = try Golden.load()
        let meta = try BundleMeta.fromJSON(Golden.data("model.json"))
        XCTAssertEqual(meta.schema, BundleMeta.schemaID)
        XCTAssertEqual(meta.arch, golden.bundle.arch)
        XCTAssertEqual(meta.variant, golden.bundle.variant)
        XCTAssertEqual(meta.inputSize, golden.bundle.inputSize)
        XCTAssertEqual(meta.mean, golden.bundle.mean)
        XCTAssertEqual(meta.std, golden.bundle.std)
        XCTAssertEqual(meta.classes, golden.bundle.classes)
        XCTAssertEqual(meta.pixelRange, "0-1")
        XCTAssertEqual(meta.formats["tflite"]?.layout, "NHWC")
        XCTAssertEqual(meta.formats["onnx"]?.inputName, "input")
    }

    func testLabelsFileMatchesClasses() throws {
        let golden = try Golden.load()
        let text = String(decoding: try Golden.data("labels.txt"), as: UTF8.self)
        let labels = text.split(separator: "\n").map { String($0) }
        XCTAssertEqual(labels, golden.bundle.classes)
    }

    func testCoreMLMetadataGivesTheSameMeta() throws {
        let meta = try BundleMeta.fromJSON(Golden.data("model.json"))
        let fromMetadata = try BundleMeta.fromMetadata(try meta.flatMetadata())
        XCTAssertEqual(fromMetadata.arch, meta.arch)
        XCTAssertEqual(fromMetadata.variant, meta.variant)
        XCTAssertEqual(fromMetadata.classes, meta.classes)
        XCTAssertEqual(fromMetadata.inputSize, meta.inputSize)
        XCTAssertEqual(fromMetadata.mean, meta.mean)
        XCTAssertEqual(fromMetadata.std, meta.std)
        XCTAssertEqual(fromMetadata.pixelRange, meta.pixelRange)
    }

    func testCoreMLMetadataAsPythonWritesIt() throws {
        // json.dumps spacing, as export/converters.py stores BundleMeta.flat_metadata()
        let metadata = [
            "deepsquare.schema": "deepsquare-bundle/1",
            "deepsquare.arch": "shufflenetv2_x0_5",
            "deepsquare.variant": "sp+sex+ss",
            "deepsquare.classes": "[\"a\", \"b\"]",
            "deepsquare.input_size": "64",
            "deepsquare.mean": "[0.4996, 0.501, 0.5001]",
            "deepsquare.std": "[0.2036, 0.2015, 0.2007]",
            "deepsquare.pixel_range": "0-1",
            "com.github.apple.coremltools.version": "8.3.0",
        ]
        let meta = try BundleMeta.fromMetadata(metadata)
        XCTAssertEqual(meta.classes, ["a", "b"])
        XCTAssertEqual(meta.inputSize, 64)
        XCTAssertEqual(meta.mean, [0.4996, 0.501, 0.5001])
    }

    func testTop5FromGoldenProbabilities() throws {
        let golden = try Golden.load()
        for photo in golden.photos {
            let top = Classification.topK(photo.probabilities, labels: golden.bundle.classes, k: 5)
            XCTAssertEqual(top.map { $0.index }, photo.top5.map { $0.index }, photo.name)
            XCTAssertEqual(top.map { $0.label }, photo.top5.map { $0.label }, photo.name)
            XCTAssertEqual(top.map { $0.probability }, photo.top5.map { $0.probability }, photo.name)
        }
    }

    func testTop5FromALabelDictionary() throws {
        // what Vision / classLabel_probs hand the app: label -> probability
        let golden = try Golden.load()
        for photo in golden.photos {
            var byLabel: [String: Double] = [:]
            for (i, label) in golden.bundle.classes.enumerated() {
                byLabel[label] = photo.probabilities[i]
            }
            let top = Classification.topK(byLabel, classes: golden.bundle.classes, k: 5)
            XCTAssertEqual(top.map { $0.index }, photo.top5.map { $0.index }, photo.name)
            XCTAssertEqual(top.map { $0.label }, photo.top5.map { $0.label }, photo.name)
        }
    }

    func testSoftmaxOfGoldenLogits() throws {
        let golden = try Golden.load()
        for photo in golden.photos {
            let probabilities = Classification.softmax(photo.logits)
            XCTAssertEqual(probabilities.count, photo.probabilities.count)
            for (mine, theirs) in zip(probabilities, photo.probabilities) {
                XCTAssertEqual(mine, theirs, accuracy: 1e-12, photo.name)
            }
            let top = Classification.topK(photo.logits, labels: golden.bundle.classes, k: 5)
            XCTAssertEqual(top.map { $0.index }, photo.top5.map { $0.index }, photo.name)
        }
    }

    func testTiesGoToTheLowerIndex() {
        let top = Classification.topK([0.2, 0.4, 0.2, 0.4], labels: ["a", "b", "c", "d"], k: 3)
        XCTAssertEqual(top.map { $0.index }, [1, 3, 0])
        let byLabel = Classification.topK(["d": 0.4, "c": 0.2, "b": 0.4, "a": 0.2, "z": 0.4],
                                          classes: ["a", "b", "c", "d"], k: 4)
        XCTAssertEqual(byLabel.map { $0.label }, ["b", "d", "z", "a"])
        XCTAssertEqual(byLabel.map { $0.index }, [1, 3, -1, 0])
    }
}
