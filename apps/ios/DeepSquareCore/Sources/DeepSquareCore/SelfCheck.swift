import Foundation

/// What one model file returned for the golden image at export, and how close the app must come.
public struct GoldenFormat: Codable, Equatable, Sendable {
    /// "logits" or "probabilities".
    public var outputs: String
    /// One value per class, in model.json's class order.
    public var values: [Double]
    public var tolerance: Double
    /// false: this format could not run where the bundle was exported (Core ML off macOS); the values are the
    /// PyTorch model's probabilities and the tolerance that format's parity bound.
    public var measured: Bool

    enum CodingKeys: String, CodingKey {
        case outputs
        case values
        case tolerance
        case measured
    }
}

/// golden.json (schema "deepsquare-golden/1"): one image at the model's input size (golden.png) and what each
/// format returned for it. Decoded by `JSONDecoder`, checked by `load`.
public struct GoldenFile: Codable, Equatable, Sendable {
    public static let schemaID = "deepsquare-golden/1"

    public var schema: String
    public var image: String
    /// The image's true class (null when the export could not load the data set and the image is synthetic).
    public var label: String?
    public var formats: [String: GoldenFormat]

    enum CodingKeys: String, CodingKey {
        case schema
        case image
        case label
        case formats
    }

    public static func load(_ data: Data, meta: BundleMeta, file: String = "golden.json") throws -> GoldenFile {
        let golden: GoldenFile = try decode(GoldenFile.self, from: data, file: file)
        func bad(_ path: String, _ why: String) -> BundleError {
            return BundleError.badValue(file: file, path: path, why: why)
        }
        if golden.schema != schemaID {
            throw bad("schema", "is \"\(golden.schema)\", not \(schemaID)")
        }
        if let label = golden.label, !meta.classes.contains(label) {
            throw bad("label", "\"\(label)\" is not one of model.json's classes")
        }
        for (name, format) in golden.formats {
            if format.outputs != "logits" && format.outputs != "probabilities" {
                throw bad("formats.\(name).outputs", "must be \"logits\" or \"probabilities\"")
            }
            if format.values.count != meta.classes.count || format.values.contains(where: { !$0.isFinite }) {
                throw bad("formats.\(name).values", "must be \(meta.classes.count) numbers, one per class")
            }
            if !(format.tolerance > 0) || !format.tolerance.isFinite {
                throw bad("formats.\(name).tolerance", "must be a positive number")
            }
        }
        return golden
    }

    public func expected(_ format: String) throws -> GoldenFormat {
        guard let found = formats[format] else {
            throw BundleError.noFormat(format, has: formats.keys.sorted())
        }
        return found
    }
}

/// The outcome of the golden self-check; `message` is what the app shows.
public struct SelfCheckResult: Equatable, Sendable {
    public let passed: Bool
    public let maxDiff: Double
    public let tolerance: Double
    public let worstClass: String
    public let message: String
}

/// The golden self-check: the app runs golden.png through its own path (for Core ML: the model's image input, which
/// scales and normalizes inside) and compares the model's answer with golden.json's values for that format.
public enum SelfCheck {
    /// `probabilities` by class name (what a Core ML classifier returns), compared with `expected` in class order.
    public static func compare(probabilities: [String: Double], classes: [String], expected: GoldenFormat) -> SelfCheckResult {
        let mine = classes.map { probabilities[$0] ?? Double.nan }
        let theirs = expected.outputs == "logits" ? Classification.softmax(expected.values) : expected.values
        return compare(mine, theirs, classes: classes, tolerance: expected.tolerance, outputs: "probabilities")
    }

    /// Values in class order (logits or probabilities as `expected.outputs` says) against `expected`.
    public static func compare(values: [Double], classes: [String], expected: GoldenFormat) -> SelfCheckResult {
        return compare(values, expected.values, classes: classes, tolerance: expected.tolerance, outputs: expected.outputs)
    }

    static func compare(_ mine: [Double], _ theirs: [Double], classes: [String], tolerance: Double,
                        outputs: String) -> SelfCheckResult {
        var worst = 0
        var maxDiff = mine.count == theirs.count ? 0.0 : Double.infinity
        for i in 0..<min(mine.count, theirs.count) {
            let diff = abs(mine[i] - theirs[i])
            if diff.isNaN || diff > maxDiff {
                maxDiff = diff.isNaN ? Double.infinity : diff
                worst = i
            }
        }
        let passed = maxDiff <= tolerance
        let worstClass = worst < classes.count ? classes[worst] : "class \(worst)"
        let figures = String(format: "max |diff| %.2g, tolerance %.2g", maxDiff, tolerance) + ", \(outputs)"
        let message = passed
            ? "self-check passed (\(figures))"
            : "self-check FAILED: the model's \(outputs) for the golden image differ from the export's by "
                + String(format: "%.2g", maxDiff) + " at class \"\(worstClass)\" (allowed "
                + String(format: "%.2g", tolerance) + "). The app and the model disagree: its answers cannot be "
                + "trusted; install the bundle again"
        return SelfCheckResult(passed: passed, maxDiff: maxDiff, tolerance: tolerance, worstClass: worstClass,
                               message: message)
    }
}
