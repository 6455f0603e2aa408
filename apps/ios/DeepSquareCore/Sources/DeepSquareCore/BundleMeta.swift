import Foundation

/// Why a bundle cannot be used. Each case has its own message, written for the person installing the app.
public enum BundleError: Error, Equatable, LocalizedError, CustomStringConvertible {
    /// The file is not JSON at all (or not UTF-8).
    case notJSON(file: String, detail: String)
    /// A field holds a value of the wrong kind; `path` is its coding path, like `formats.tflite.file`.
    case wrongKind(file: String, path: String, expected: String)
    /// A field the app needs is not there.
    case missing(file: String, path: String)
    /// A field is there, of the right kind, with a value the app cannot use; `why` says which.
    case badValue(file: String, path: String, why: String)
    /// The bundle has no model of the format the app runs.
    case noFormat(String, has: [String])

    public var description: String {
        switch self {
        case .notJSON(let file, let detail):
            return "\(file) cannot be read: it is not valid JSON (\(detail)). Copy the bundle again or re-export it."
        case .wrongKind(let file, let path, let expected):
            return "\(file): \(path) must be \(expected)."
        case .missing(let file, let path):
            return "\(file): \(path) is missing; re-export the bundle with a current deepsquare."
        case .badValue(let file, let path, let why):
            return "\(file): \(path) \(why)."
        case .noFormat(let format, let has):
            return "This bundle has no \(format) model (it has \(has.joined(separator: ", "))): "
                + "export it with `deepsquare export CKPT --to \(format)`."
        }
    }

    public var errorDescription: String? {
        return description
    }
}

/// `extra` of a format entry: only what the app reads.
public struct FormatExtra: Codable, Equatable, Sendable {
    /// "logits" or "probabilities": what the model returns.
    public var outputs: String?
}

/// One exported model file of the bundle (model.json `formats` entry).
public struct FormatEntry: Codable, Equatable, Sendable {
    public var file: String
    public var layout: String
    public var inputName: String
    public var outputName: String
    public var precision: String?
    /// "float32", "uint8" or "image" (schema /2); absent in /1 bundles.
    public var inputDtype: String?
    public var extra: FormatExtra?

    enum CodingKeys: String, CodingKey {
        case file
        case layout
        case inputName = "input_name"
        case outputName = "output_name"
        case precision
        case inputDtype = "input_dtype"
        case extra
    }

    /// What the model returns for one image: "logits" (the default) or "probabilities".
    public var outputs: String {
        return extra?.outputs ?? "logits"
    }
}

/// model.json, decoded by `JSONDecoder` (schema "deepsquare-bundle/2", or "/1": float input, no golden file) and
/// then checked by `checked(file:)`: `BundleMeta.load` does both. Fields the app does not read (provenance) are
/// not decoded.
public struct BundleMeta: Codable, Equatable, Sendable {
    public static let schemas = ["deepsquare-bundle/2", "deepsquare-bundle/1"]

    public var schema: String
    public var id: String?
    public var arch: String
    public var variant: String
    public var classes: [String]
    public var inputSize: Int
    public var mean: [Double]
    public var std: [Double]
    public var pixelRange: String?
    public var input: String?
    public var formats: [String: FormatEntry]
    public var sha256: [String: String]?
    public var golden: String?
    public var samples: String?

    enum CodingKeys: String, CodingKey {
        case schema
        case id
        case arch
        case variant
        case classes
        case inputSize = "input_size"
        case mean
        case std
        case pixelRange = "pixel_range"
        case input
        case formats
        case sha256
        case golden
        case samples
    }

    public init(schema: String = "deepsquare-bundle/2", id: String? = nil, arch: String, variant: String,
                classes: [String], inputSize: Int, mean: [Double], std: [Double], pixelRange: String? = "0-1",
                input: String? = "float", formats: [String: FormatEntry] = [:], sha256: [String: String]? = nil,
                golden: String? = nil, samples: String? = nil) {
        self.schema = schema
        self.id = id
        self.arch = arch
        self.variant = variant
        self.classes = classes
        self.inputSize = inputSize
        self.mean = mean
        self.std = std
        self.pixelRange = pixelRange
        self.input = input
        self.formats = formats
        self.sha256 = sha256
        self.golden = golden
        self.samples = samples
    }

    public var isVersion2: Bool {
        return schema == "deepsquare-bundle/2"
    }

    /// Decode and check model.json's bytes; every failure is a `BundleError` naming `file` and the field.
    public static func load(_ data: Data, file: String = "model.json") throws -> BundleMeta {
        let meta: BundleMeta = try decode(BundleMeta.self, from: data, file: file)
        return try meta.checked(file: file)
    }

    /// The entry of `format` (e.g. "coreml").
    public func format(_ format: String) throws -> FormatEntry {
        guard let entry = formats[format] else {
            throw BundleError.noFormat(format, has: formats.keys.sorted())
        }
        return entry
    }

    /// Every check that keeps a wrong bundle from running; self, or the first problem found.
    public func checked(file: String = "model.json") throws -> BundleMeta {
        func bad(_ path: String, _ why: String) -> BundleError {
            return BundleError.badValue(file: file, path: path, why: why)
        }
        if !BundleMeta.schemas.contains(schema) {
            throw bad("schema", "is \"\(schema)\", not one this app reads (\(BundleMeta.schemas.joined(separator: ", ")))")
        }
        if isVersion2 && (id ?? "").count != 36 {
            throw bad("id", "must be the bundle's UUID")
        }
        if classes.isEmpty {
            throw bad("classes", "is empty: the app cannot name its answers")
        }
        if classes.contains("") {
            throw bad("classes", "has an empty class name")
        }
        if Set(classes).count != classes.count {
            throw bad("classes", "names a class twice: the answers would be ambiguous")
        }
        if inputSize < 8 || inputSize > 4096 {
            throw bad("input_size", "is \(inputSize) pixels; it must be 8 to 4096")
        }
        for (name, values) in [("mean", mean), ("std", std)] where values.count != 3 || values.contains(where: { !$0.isFinite }) {
            throw bad(name, "must be three numbers (R, G, B)")
        }
        if std.contains(where: { $0 <= 0 }) {
            throw bad("std", "must be three positive numbers (the pixels are divided by them)")
        }
        if let range = pixelRange, range != "0-1" {
            throw bad("pixel_range", "is \"\(range)\", not \"0-1\"")
        }
        if isVersion2 && input != "float" && input != "uint8" {
            throw bad("input", "must be \"float\" or \"uint8\"")
        }
        if isVersion2 && formats.isEmpty {
            throw bad("formats", "lists no model file")
        }
        for name in formats.keys.sorted() {
            try BundleMeta.check(formats[name]!, path: "formats.\(name)", version2: isVersion2, file: file)
        }
        for (name, digest) in sha256 ?? [:] where digest.count != 64 || !digest.allSatisfy({ "0123456789abcdef".contains($0) }) {
            throw bad("sha256.\(name)", "must be 64 lowercase hex digits")
        }
        if let name = golden, name != "golden.json" {
            throw bad("golden", "must be \"golden.json\" or null")
        }
        if let name = samples, name != "samples.json" {
            throw bad("samples", "must be \"samples.json\" or null")
        }
        return self
    }

    static func check(_ entry: FormatEntry, path: String, version2: Bool, file: String) throws {
        func bad(_ field: String, _ why: String) -> BundleError {
            return BundleError.badValue(file: file, path: "\(path).\(field)", why: why)
        }
        if entry.file.isEmpty || entry.file == "." || entry.file == ".." || entry.file.contains("/") {
            throw bad("file", "must name a file directly inside the bundle")
        }
        if !["NCHW", "NHWC", "image"].contains(entry.layout) {
            throw bad("layout", "is \"\(entry.layout)\", not NCHW, NHWC or image")
        }
        if version2 && entry.inputDtype == nil {
            throw BundleError.missing(file: file, path: "\(path).input_dtype")
        }
        let dtype = entry.inputDtype ?? (entry.layout == "image" ? "image" : "float32")
        if !["float32", "uint8", "image"].contains(dtype) {
            throw bad("input_dtype", "is \"\(dtype)\", not float32, uint8 or image")
        }
        if dtype == "uint8" && entry.layout != "NHWC" {
            throw bad("layout", "must be NHWC for uint8 pixels")
        }
        if (dtype == "image") != (entry.layout == "image") {
            throw bad("input_dtype", "\"\(dtype)\" does not go with layout \"\(entry.layout)\"")
        }
        if entry.outputs != "logits" && entry.outputs != "probabilities" {
            throw bad("extra.outputs", "must be \"logits\" or \"probabilities\"")
        }
    }
}

/// `JSONDecoder` with its errors turned into `BundleError`s that name the file and the field.
func decode<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch DecodingError.typeMismatch(let expected, let context) {
        throw BundleError.wrongKind(file: file, path: dotted(context.codingPath), expected: kindName(expected))
    } catch DecodingError.valueNotFound(let expected, let context) {
        throw BundleError.wrongKind(file: file, path: dotted(context.codingPath), expected: kindName(expected))
    } catch DecodingError.keyNotFound(let key, let context) {
        throw BundleError.missing(file: file, path: dotted(context.codingPath + [key]))
    } catch DecodingError.dataCorrupted(let context) {
        if context.codingPath.isEmpty {
            throw BundleError.notJSON(file: file, detail: context.debugDescription)
        }
        throw BundleError.wrongKind(file: file, path: dotted(context.codingPath), expected: "a value of another kind")
    }
}

func dotted(_ path: [CodingKey]) -> String {
    return path.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
        .joined(separator: ".")
        .replacingOccurrences(of: ".[", with: "[")
}

func kindName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type:
        return "text"
    case is Int.Type:
        return "a whole number"
    case is Double.Type:
        return "a number"
    case is Bool.Type:
        return "true or false"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array") {
            return "a list"
        }
        if name.hasPrefix("Dictionary") {
            return "an object"
        }
        return "an object"
    }
}
