import DeepSquareCore
import Foundation
import XCTest

final class SelfCheckTests: XCTestCase {
    private let probabilities: [Double] = [0.02, 0.03, 0.05, 0.5, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]

    private func golden(_ values: [Double], outputs: String = "probabilities") throws -> GoldenFormat {
        let meta = try BundleMeta.load(Fixtures.data(Fixtures.modelJSON()))
        let file = try GoldenFile.load(Fixtures.data(Fixtures.goldenJSON(values: values, outputs: outputs)), meta: meta)
        XCTAssertEqual(file.label, "3")
        return try file.expected("coreml")
    }

    /// What Vision / classLabel_probs hand the app: label -> probability.
    private func byLabel(_ values: [Double]) -> [String: Double] {
        var result: [String: Double] = [:]
        for (i, name) in Fixtures.classes.enumerated() {
            result[name] = values[i]
        }
        return result
    }

    func testPassesOnTheExportsOwnProbabilities() throws {
        let result = SelfCheck.compare(probabilities: byLabel(probabilities.map { $0 + 0.001 }),
                                       classes: Fixtures.classes, expected: try golden(probabilities))
        XCTAssertTrue(result.passed, result.message)
        XCTAssertTrue(result.message.hasPrefix("self-check passed (max |diff| "), result.message)
    }

    func testGoldenLogitsAreComparedAsProbabilities() throws {
        let logits = probabilities.map { log($0) }
        let result = SelfCheck.compare(probabilities: byLabel(probabilities), classes: Fixtures.classes,
                                       expected: try golden(logits, outputs: "logits"))
        XCTAssertTrue(result.passed, result.message)
    }

    func testFailsClearlyOnAnAlteredGoldenFile() throws {
        var altered = probabilities
        altered[5] += 0.2
        let result = SelfCheck.compare(probabilities: byLabel(probabilities), classes: Fixtures.classes,
                                       expected: try golden(altered))
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.worstClass, "5")
        XCTAssertTrue(result.message.hasPrefix("self-check FAILED: "), result.message)
    }

    func testAMissingClassFails() throws {
        var partial = byLabel(probabilities)
        partial.removeValue(forKey: "7")
        let result = SelfCheck.compare(probabilities: partial, classes: Fixtures.classes, expected: try golden(probabilities))
        XCTAssertFalse(result.passed)
    }

    func testAWrongGoldenFileIsRefused() throws {
        let meta = try BundleMeta.load(Fixtures.data(Fixtures.modelJSON()))
        XCTAssertThrowsError(try GoldenFile.load(Fixtures.data(Fixtures.goldenJSON(values: [0.5, 0.5])), meta: meta))
        XCTAssertThrowsError(try GoldenFile.load(Fixtures.data(Fixtures.goldenJSON(values: probabilities, tolerance: 0)),
                                                 meta: meta))
    }

    func testTop5FromALabelDictionary() {
        let top = Classification.topK(byLabel(probabilities), classes: Fixtures.classes, k: 5)
        XCTAssertEqual(top.first?.label, "3")
        XCTAssertEqual(top.count, 5)
        let ties = Classification.topK(["d": 0.4, "c": 0.2, "b": 0.4, "a": 0.2, "z": 0.4], classes: ["a", "b", "c", "d"], k: 4)
        XCTAssertEqual(ties.map { $0.label }, ["b", "d", "z", "a"])
    }
}
