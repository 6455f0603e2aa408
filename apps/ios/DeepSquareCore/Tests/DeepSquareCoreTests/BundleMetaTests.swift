import DeepSquareCore
import Foundation
import XCTest

final class BundleMetaTests: XCTestCase {
    /// `object` must be refused with a message that mentions `mentions`.
    private func assertRefused(_ object: Any, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let meta = try BundleMeta.load(Fixtures.data(object))
            XCTFail("accepted: \(meta)", file: file, line: line)
        } catch let error as BundleError {
            XCTAssertTrue(error.description.contains(mentions), "\(error.description) lacks \(mentions)",
                          file: file, line: line)
        } catch {
            XCTFail("not a BundleError: \(error)", file: file, line: line)
        }
    }

    private func changed(_ change: (inout [String: Any]) -> Void) -> [String: Any] {
        var object = Fixtures.modelJSON()
        change(&object)
        return object
    }

    func testAVersion2BundleIsRead() throws {
        let meta = try BundleMeta.load(Fixtures.data(Fixtures.modelJSON()))
        XCTAssertEqual(meta.classes, Fixtures.classes)
        XCTAssertEqual(meta.inputSize, 8)
        XCTAssertEqual(meta.input, "uint8")
        XCTAssertEqual(try meta.format("coreml").inputDtype, "image")
        XCTAssertEqual(try meta.format("coreml").outputs, "probabilities")
        XCTAssertEqual(meta.golden, "golden.json")
        XCTAssertThrowsError(try meta.format("onnx"))
    }

    func testAVersion1BundleIsReadWithoutGolden() throws {
        let object = changed { object in
            object["schema"] = "deepsquare-bundle/1"
            for key in ["id", "input", "golden", "samples"] {
                object.removeValue(forKey: key)
            }
            object["formats"] = ["coreml": ["file": "model.mlpackage", "layout": "image", "input_name": "image",
                                            "output_name": "classLabel"]]
        }
        let meta = try BundleMeta.load(Fixtures.data(object))
        XCTAssertNil(meta.golden)
        XCTAssertNil(try meta.format("coreml").inputDtype)
    }

    func testNotJSON() {
        let text = String(decoding: try! Fixtures.data(Fixtures.modelJSON()), as: UTF8.self)
        XCTAssertThrowsError(try BundleMeta.load(Data(text.prefix(text.count / 2).utf8))) { error in
            XCTAssertTrue("\(error)".contains("is not valid JSON"), "\(error)")
        }
    }

    func testAFieldOfTheWrongKindIsNamed() {
        assertRefused(changed { $0["input_size"] = "64" }, mentions: "input_size must be a whole number")
        assertRefused(changed { $0["arch"] = 3 }, mentions: "arch must be text")
        assertRefused(changed { $0["std"] = [0.5, "x", 0.5] }, mentions: "std[1] must be a number")
        assertRefused(changed { $0.removeValue(forKey: "classes") }, mentions: "classes is missing")
    }

    func testEachWrongValueHasItsOwnMessage() {
        assertRefused(changed { $0["schema"] = "deepsquare-bundle/9" }, mentions: "not one this app reads")
        assertRefused(changed { $0["classes"] = [String]() }, mentions: "classes is empty")
        assertRefused(changed { $0["classes"] = ["a", "b", "a"] }, mentions: "names a class twice")
        assertRefused(changed { $0["input_size"] = 4 }, mentions: "it must be 8 to 4096")
        assertRefused(changed { $0["mean"] = [0.5, 0.5] }, mentions: "mean must be three numbers")
        assertRefused(changed { $0["std"] = [0.2, 0.0, 0.2] }, mentions: "std must be three positive numbers")
        assertRefused(changed { $0["input"] = "int8" }, mentions: "input must be \"float\" or \"uint8\"")
        assertRefused(changed { $0["golden"] = "../golden.json" }, mentions: "golden must be \"golden.json\" or null")
        var formats = Fixtures.modelJSON()["formats"] as! [String: [String: Any]]
        formats["tflite"]?["layout"] = "NCHW"
        assertRefused(changed { $0["formats"] = formats }, mentions: "formats.tflite.layout must be NHWC for uint8 pixels")
    }
}
