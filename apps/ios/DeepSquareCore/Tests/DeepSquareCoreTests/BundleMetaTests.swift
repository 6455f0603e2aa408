import DeepSquareCore
import Foundation
import XCTest

final class BundleMetaTests: XCTestCase {
    private func goldenObject() throws -> [String: JSONValue] {
        let value = try JSONDecoder().decode(JSONValue.self, from: Golden.data("model.json"))
        let object = try XCTUnwrap(value.objectValue)
        return object
    }

    private func encoded(_ object: [String: JSONValue]) throws -> Data {
        return try JSONEncoder().encode(JSONValue.object(object))
    }

    /// `data` must fail with the error `matches` accepts, and its message must mention `mentions`.
    private func assertRejected(_ data: Data, mentions: String, _ matches: (BundleError) -> Bool,
                                file: StaticString = #filePath, line: UInt = #line) {
        do {
            let meta = try BundleMeta.fromJSON(data)
            XCTFail("accepted: \(meta)", file: file, line: line)
        } catch let error as BundleError {
            XCTAssertTrue(matches(error), "unexpected error \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(mentions), "\(error.description) lacks \(mentions)",
                          file: file, line: line)
        } catch {
            XCTFail("not a BundleError: \(error)", file: file, line: line)
        }
    }

    func testTheGoldenModelJSONIsAccepted() throws {
        XCTAssertNoThrow(try BundleMeta.fromJSON(Golden.data("model.json")))
        let decoded = try JSONDecoder().decode(BundleMeta.self, from: Golden.data("model.json"))
        XCTAssertEqual(decoded, try BundleMeta.fromJSON(Golden.data("model.json")))
    }

    func testEncodedMetaReadsBack() throws {
        let meta = try BundleMeta.fromJSON(Golden.data("model.json"))
        let again = try BundleMeta.fromJSON(JSONEncoder().encode(meta))
        XCTAssertEqual(again, meta)
    }

    func testCorruptJSON() throws {
        var bytes = try Golden.data("model.json")
        bytes = bytes.prefix(bytes.count / 2)
        assertRejected(bytes, mentions: "not valid JSON") { error in
            if case .notJSON = error {
                return true
            }
            return false
        }
    }

    func testNotAnObject() {
        assertRejected(Data("[1, 2]".utf8), mentions: "found list") { error in
            return error == BundleError.notAnObject(found: "list")
        }
    }

    func testWrongSchema() throws {
        var object = try goldenObject()
        object["schema"] = JSONValue.string("deepsquare-bundle/2")
        assertRejected(try encoded(object), mentions: "unknown bundle schema 'deepsquare-bundle/2'") { error in
            return error == BundleError.unknownSchema(found: "'deepsquare-bundle/2'")
        }
        object.removeValue(forKey: "schema")
        assertRejected(try encoded(object), mentions: "unknown bundle schema None") { error in
            return error == BundleError.unknownSchema(found: "None")
        }
    }

    func testMissingFields() throws {
        var object = try goldenObject()
        object.removeValue(forKey: "std")
        object.removeValue(forKey: "arch")
        assertRejected(try encoded(object), mentions: "missing field(s) arch, std") { error in
            return error == BundleError.missingFields(["arch", "std"])
        }
    }

    func testBadInputSize() throws {
        let bad: [JSONValue] = [
            JSONValue.int(4), JSONValue.int(5000), JSONValue.string("64"), JSONValue.bool(true), JSONValue.double(64.5),
        ]
        for value in bad {
            var object = try goldenObject()
            object["input_size"] = value
            assertRejected(try encoded(object), mentions: "'input_size' must be a whole number of pixels in 8..4096") {
                error in
                if case .badInputSize = error {
                    return true
                }
                return false
            }
        }
        var object = try goldenObject()
        object["input_size"] = JSONValue.int(8)
        XCTAssertEqual(try BundleMeta.fromJSON(encoded(object)).inputSize, 8)
        object["input_size"] = JSONValue.int(4096)
        XCTAssertEqual(try BundleMeta.fromJSON(encoded(object)).inputSize, 4096)
    }

    func testStdMustBePositive() throws {
        for std in [[0.2, 0.0, 0.2], [0.2, -0.1, 0.2]] {
            var object = try goldenObject()
            object["std"] = JSONValue.array(std.map { JSONValue.double($0) })
            assertRejected(try encoded(object), mentions: "'std' must be positive") { error in
                if case .nonPositiveStd = error {
                    return true
                }
                return false
            }
        }
    }

    func testMeanMustBeThreeNumbers() throws {
        let bad: [JSONValue] = [
            JSONValue.array([JSONValue.double(0.5), JSONValue.double(0.5)]),
            JSONValue.array([JSONValue.double(0.5), JSONValue.bool(true), JSONValue.double(0.5)]),
            JSONValue.string("0.5"),
        ]
        for value in bad {
            var object = try goldenObject()
            object["mean"] = value
            assertRejected(try encoded(object), mentions: "'mean' must be 3 numbers (R, G, B)") { error in
                if case .badTriple(let field, _) = error {
                    return field == "mean"
                }
                return false
            }
        }
    }

    func testClassesAndStringFields() throws {
        var object = try goldenObject()
        object["classes"] = JSONValue.array([])
        assertRejected(try encoded(object), mentions: "'classes' must be a non-empty list of strings") { error in
            if case .badClasses = error {
                return true
            }
            return false
        }
        object = try goldenObject()
        object["variant"] = JSONValue.int(3)
        assertRejected(try encoded(object), mentions: "'variant' must be a string, got 3") { error in
            return error == BundleError.notAString(field: "variant", got: "3")
        }
    }

    func testFormats() throws {
        var object = try goldenObject()
        object["formats"] = JSONValue.array([])
        assertRejected(try encoded(object), mentions: "'formats' must be an object, got list") { error in
            return error == BundleError.badFormats(found: "list")
        }
        object = try goldenObject()
        object["formats"] = JSONValue.object(["coreml": JSONValue.object([
            "file": JSONValue.string(""), "layout": JSONValue.string("image"),
            "input_name": JSONValue.string("image"), "output_name": JSONValue.string("classLabel"),
        ])])
        assertRejected(try encoded(object), mentions: "format entry 'coreml' has no file name") { error in
            return error == BundleError.formatWithoutFile(name: "coreml")
        }
    }

    func testMetadataErrors() {
        XCTAssertThrowsError(try BundleMeta.fromMetadata(["com.apple.coreml.model.preview.type": "imageClassifier"])) {
            error in
            XCTAssertEqual(error as? BundleError, BundleError.noMetadata)
        }
        let metadata = [
            "deepsquare.schema": "deepsquare-bundle/1",
            "deepsquare.arch": "resnet18",
            "deepsquare.variant": "baseline",
            "deepsquare.classes": "[\"a\", ",
            "deepsquare.input_size": "224",
            "deepsquare.mean": "[0.5, 0.5, 0.5]",
            "deepsquare.std": "[0.5, 0.5, 0.5]",
        ]
        XCTAssertThrowsError(try BundleMeta.fromMetadata(metadata)) { error in
            XCTAssertEqual(error as? BundleError, BundleError.badMetadata(key: "deepsquare.classes", value: "[\"a\", "))
        }
        var noSize = metadata
        noSize["deepsquare.classes"] = "[\"a\"]"
        noSize["deepsquare.input_size"] = "big"
        XCTAssertThrowsError(try BundleMeta.fromMetadata(noSize)) { error in
            XCTAssertEqual(error as? BundleError, BundleError.badInputSize(got: "'big'"))
        }
    }
}
