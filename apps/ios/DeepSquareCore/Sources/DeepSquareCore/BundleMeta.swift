import Foundation

/// Why a bundle's metadata cannot be used. The messages mirror `BundleMeta.from_dict` in
/// runtime/bundle.py, so a user sees the same sentence from the app as from the Python tools.
public enum BundleError: Error, Equatable, LocalizedError, CustomStringConvertible {
    /// model.json is not JSON at all (or not UTF-8).
    case notJSON(detail: String)
    /// The top level is not a JSON object; `found` is the Python type name (list, str, ...).
    case notAnObject(found: String)
    /// `schema` is missing or is not "deepsquare-bundle/1"; `found` is its repr (None when missing).
    case unknownSchema(found: String)
    /// Required fields that are absent, sorted.
    case missingFields([String])
    /// arch, variant or pixel_range is not a string.
    case notAString(field: String, got: String)
    case badClasses(got: String)
    case badInputSize(got: String)
    /// mean or std is not a list of 3 finite numbers.
    case badTriple(field: String, got: String)
    case nonPositiveStd(got: String)
    case badFormats(found: String)
    case malformedFormat(name: String, reason: String)
    case formatWithoutFile(name: String)
    /// The Core ML model carries no `deepsquare.*` user-defined metadata.
    case noMetadata
    /// A `deepsquare.*` metadata value that should hold JSON does not.
    case badMetadata(key: String, value: String)

    public var description: String {
        switch self {
        case .notJSON(let detail):
            return "model.json is not valid JSON (\(detail)); re-export the bundle"
        case .notAnObject(let found):
            return "expected a JSON object, found \(found)"
        case .unknownSchema(let found):
            return "unknown bundle schema \(found); expected \(BundleMeta.schemaID)"
        case .missingFields(let names):
            return "missing field(s) \(names.joined(separator: ", "))"
        case .notAString(let field, let got):
            return "'\(field)' must be a string, got \(got)"
        case .badClasses(let got):
            return "'classes' must be a non-empty list of strings, got \(got)"
        case .badInputSize(let got):
            return "'input_size' must be a whole number of pixels in 8..4096, got \(got)"
        case .badTriple(let field, let got):
            return "'\(field)' must be 3 numbers (R, G, B), got \(got)"
        case .nonPositiveStd(let got):
            return "'std' must be positive, got \(got)"
        case .badFormats(let found):
            return "'formats' must be an object, got \(found)"
        case .malformedFormat(let name, let reason):
            return "format entry '\(name)' is malformed: \(reason)"
        case .formatWithoutFile(let name):
            return "format entry '\(name)' has no file name"
        case .noMetadata:
            return "the model carries no deepsquare.* metadata; export it with deepsquare-export --to coreml"
        case .badMetadata(let key, let value):
            return "model metadata \(key) is not valid JSON: \(value)"
        }
    }

    public var errorDescription: String? {
        return description
    }
}

/// One exported format of the bundle (model.json `formats` entry).
public struct FormatEntry: Codable, Equatable, Sendable {
    public var file: String
    public var layout: String
    public var inputName: String
    public var outputName: String
    public var precision: String
    public var extra: [String: JSONValue]

    enum CodingKeys: String, CodingKey {
        case file
        case layout
        case inputName = "input_name"
        case outputName = "output_name"
        case precision
        case extra
    }

    public init(file: String, layout: String, inputName: String, outputName: String, precision: String = "fp32",
                extra: [String: JSONValue] = [:]) {
        self.file = file
        self.layout = layout
        self.inputName = inputName
        self.outputName = outputName
        self.precision = precision
        self.extra = extra
    }
}

/// The bundle's metadata: model.json, or the same fields embedded in the Core ML model's
/// user-defined metadata (`deepsquare.*` keys, see `BundleMeta.flat_metadata` in runtime/bundle.py).
public struct BundleMeta: Codable, Equatable, Sendable {
    public static let schemaID = "deepsquare-bundle/1"
    public static let metadataPrefix = "deepsquare."

    public var arch: String
    public var variant: String
    public var classes: [String]
    public var inputSize: Int
    public var mean: [Double]
    public var std: [Double]
    public var pixelRange: String
    public var formats: [String: FormatEntry]
    public var provenance: JSONValue
    public var schema: String

    enum CodingKeys: String, CodingKey {
        case arch
        case variant
        case classes
        case inputSize = "input_size"
        case mean
        case std
        case pixelRange = "pixel_range"
        case formats
        case provenance
        case schema
    }

    public init(arch: String, variant: String, classes: [String], inputSize: Int, mean: [Double], std: [Double],
                pixelRange: String = "0-1", formats: [String: FormatEntry] = [:],
                provenance: JSONValue = JSONValue.object([:]), schema: String = BundleMeta.schemaID) {
        self.arch = arch
        self.variant = variant
        self.classes = classes
        self.inputSize = inputSize
        self.mean = mean
        self.std = std
        self.pixelRange = pixelRange
        self.formats = formats
        self.provenance = provenance
        self.schema = schema
    }

    /// Decoding checks every field like `fromJSON` (the errors are `BundleError`s).
    public init(from decoder: Decoder) throws {
        let value = try JSONValue(from: decoder)
        self = try BundleMeta.validated(value)
    }

    /// Read and check model.json's bytes.
    public static func fromJSON(_ data: Data) throws -> BundleMeta {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw BundleError.notJSON(detail: String(describing: error))
        }
        return try validated(value)
    }

    /// Read and check the `deepsquare.*` keys of a Core ML model's creator-defined metadata
    /// (`MLModel.modelDescription.metadata[.creatorDefinedKey] as? [String: String]`).
    public static func fromMetadata(_ metadata: [String: String]) throws -> BundleMeta {
        let prefix = BundleMeta.metadataPrefix
        if !metadata.keys.contains(where: { $0.hasPrefix(prefix) }) {
            throw BundleError.noMetadata
        }
        var object: [String: JSONValue] = [:]
        for name in ["schema", "arch", "variant", "pixel_range"] {
            if let text = metadata[prefix + name] {
                object[name] = JSONValue.string(text)
            }
        }
        if let text = metadata[prefix + "input_size"] {
            if let size = Int(text) {
                object["input_size"] = JSONValue.int(size)
            } else {
                object["input_size"] = JSONValue.string(text)
            }
        }
        for name in ["classes", "mean", "std"] {
            if let text = metadata[prefix + name] {
                do {
                    object[name] = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
                } catch {
                    throw BundleError.badMetadata(key: prefix + name, value: String(text.prefix(60)))
                }
            }
        }
        return try validated(JSONValue.object(object))
    }

    /// The checks of `BundleMeta.from_dict` (runtime/bundle.py), in the same order.
    public static func validated(_ value: JSONValue) throws -> BundleMeta {
        guard let data = value.objectValue else {
            throw BundleError.notAnObject(found: value.typeName)
        }
        let schema = data["schema"]?.stringValue
        if schema != BundleMeta.schemaID {
            throw BundleError.unknownSchema(found: data["schema"]?.pythonRepr ?? "None")
        }
        let missing = ["arch", "variant", "classes", "input_size", "mean", "std"].filter { data[$0] == nil }.sorted()
        if !missing.isEmpty {
            throw BundleError.missingFields(missing)
        }
        for name in ["arch", "variant", "pixel_range"] {
            if let field = data[name], field.stringValue == nil {
                throw BundleError.notAString(field: name, got: field.pythonRepr)
            }
        }
        let classesValue = data["classes"] ?? JSONValue.null
        let classes = (classesValue.arrayValue ?? []).compactMap { $0.stringValue }
        if classes.isEmpty || classes.count != classesValue.arrayValue?.count {
            throw BundleError.badClasses(got: String(classesValue.pythonRepr.prefix(60)))
        }
        let sizeValue = data["input_size"] ?? JSONValue.null
        guard let inputSize = sizeValue.intValue, inputSize >= 8, inputSize <= 4096 else {
            throw BundleError.badInputSize(got: sizeValue.pythonRepr)
        }
        let mean = try triple(data, "mean")
        let std = try triple(data, "std")
        if std.contains(where: { $0 <= 0 }) {
            throw BundleError.nonPositiveStd(got: (data["std"] ?? JSONValue.null).pythonRepr)
        }
        let formatsValue = data["formats"] ?? JSONValue.object([:])
        guard let formatsObject = formatsValue.objectValue else {
            throw BundleError.badFormats(found: formatsValue.typeName)
        }
        var formats: [String: FormatEntry] = [:]
        for name in formatsObject.keys.sorted() {
            formats[name] = try formatEntry(name, formatsObject[name] ?? JSONValue.null)
        }
        return BundleMeta(
            arch: data["arch"]?.stringValue ?? "",
            variant: data["variant"]?.stringValue ?? "",
            classes: classes,
            inputSize: inputSize,
            mean: mean,
            std: std,
            pixelRange: data["pixel_range"]?.stringValue ?? "0-1",
            formats: formats,
            provenance: data["provenance"] ?? JSONValue.object([:]),
            schema: BundleMeta.schemaID
        )
    }

    static func triple(_ data: [String: JSONValue], _ name: String) throws -> [Double] {
        let value = data[name] ?? JSONValue.null
        let numbers = (value.arrayValue ?? []).compactMap { $0.numberValue }.filter { $0.isFinite }
        if numbers.count != 3 || value.arrayValue?.count != 3 {
            throw BundleError.badTriple(field: name, got: value.pythonRepr)
        }
        return numbers
    }

    static func formatEntry(_ name: String, _ value: JSONValue) throws -> FormatEntry {
        guard let entry = value.objectValue else {
            throw BundleError.malformedFormat(name: name, reason: "expected an object, got \(value.typeName)")
        }
        let known: Set<String> = ["file", "layout", "input_name", "output_name", "precision", "extra"]
        let unexpected = entry.keys.filter { !known.contains($0) }.sorted()
        if !unexpected.isEmpty {
            throw BundleError.malformedFormat(name: name, reason: "unexpected field(s) \(unexpected.joined(separator: ", "))")
        }
        let absent = ["file", "layout", "input_name", "output_name"].filter { entry[$0] == nil }
        if !absent.isEmpty {
            throw BundleError.malformedFormat(name: name, reason: "missing field(s) \(absent.joined(separator: ", "))")
        }
        guard let file = entry["file"]?.stringValue, !file.isEmpty else {
            throw BundleError.formatWithoutFile(name: name)
        }
        for key in ["layout", "input_name", "output_name", "precision"] {
            if let field = entry[key], field.stringValue == nil {
                throw BundleError.malformedFormat(name: name, reason: "'\(key)' must be a string, got \(field.pythonRepr)")
            }
        }
        var extra: [String: JSONValue] = [:]
        if let extraValue = entry["extra"] {
            guard let extraObject = extraValue.objectValue else {
                throw BundleError.malformedFormat(name: name, reason: "'extra' must be an object, got \(extraValue.typeName)")
            }
            extra = extraObject
        }
        return FormatEntry(
            file: file,
            layout: entry["layout"]?.stringValue ?? "",
            inputName: entry["input_name"]?.stringValue ?? "",
            outputName: entry["output_name"]?.stringValue ?? "",
            precision: entry["precision"]?.stringValue ?? "fp32",
            extra: extra
        )
    }

    /// The Core ML user-defined metadata this bundle's export writes (`flat_metadata` in runtime/bundle.py).
    public func flatMetadata() throws -> [String: String] {
        let encoder = JSONEncoder()
        func json<T: Encodable>(_ value: T) throws -> String {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        }
        let prefix = BundleMeta.metadataPrefix
        let classesText = try json(classes)
        let meanText = try json(mean)
        let stdText = try json(std)
        return [
            prefix + "schema": schema,
            prefix + "arch": arch,
            prefix + "variant": variant,
            prefix + "classes": classesText,
            prefix + "input_size": String(inputSize),
            prefix + "mean": meanText,
            prefix + "std": stdText,
            prefix + "pixel_range": pixelRange,
        ]
    }
}
