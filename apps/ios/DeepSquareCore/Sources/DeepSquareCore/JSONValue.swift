import Foundation

/// Any JSON value, kept with its kind, so that bundle metadata can be checked field by field the way
/// runtime/bundle.py checks it (a Bool is not a number, a list is not an object) and an error can
/// show what was found.
///
/// One difference from Python remains: Foundation's JSONDecoder reads `64.0` as the integer 64,
/// where Python's json module gives a float (and `BundleMeta.from_dict` rejects it as input_size).
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The name Python gives this kind (`type(x).__name__`), for messages that mirror runtime/bundle.py.
    public var typeName: String {
        switch self {
        case .null:
            return "NoneType"
        case .bool:
            return "bool"
        case .int:
            return "int"
        case .double:
            return "float"
        case .string:
            return "str"
        case .array:
            return "list"
        case .object:
            return "dict"
        }
    }

    /// Python's repr of the value, near enough: strings in single quotes, True/False/None.
    public var pythonRepr: String {
        switch self {
        case .null:
            return "None"
        case .bool(let value):
            return value ? "True" : "False"
        case .int(let value):
            return String(value)
        case .double(let value):
            return JSONValue.formatDouble(value)
        case .string(let value):
            return "'" + value + "'"
        case .array(let values):
            return "[" + values.map { $0.pythonRepr }.joined(separator: ", ") + "]"
        case .object(let values):
            let items = values.keys.sorted().map { key in
                "'" + key + "': " + (values[key] ?? JSONValue.null).pythonRepr
            }
            return "{" + items.joined(separator: ", ") + "}"
        }
    }

    static func formatDouble(_ value: Double) -> String {
        if value.isNaN {
            return "nan"
        }
        if value.isInfinite {
            return value > 0 ? "inf" : "-inf"
        }
        if value == value.rounded() && abs(value) < 1e16 {
            return String(format: "%.1f", value)
        }
        return String(value)
    }

    public var stringValue: String? {
        switch self {
        case .string(let value):
            return value
        default:
            return nil
        }
    }

    /// Only a JSON integer: neither a Bool nor a float.
    public var intValue: Int? {
        switch self {
        case .int(let value):
            return value
        default:
            return nil
        }
    }

    /// A JSON integer or float as a Double; nil for a Bool (Python: `isinstance(v, int | float) and not isinstance(v, bool)`).
    public var numberValue: Double? {
        switch self {
        case .int(let value):
            return Double(value)
        case .double(let value):
            return value
        default:
            return nil
        }
    }

    public var arrayValue: [JSONValue]? {
        switch self {
        case .array(let values):
            return values
        default:
            return nil
        }
    }

    public var objectValue: [String: JSONValue]? {
        switch self {
        case .object(let values):
            return values
        default:
            return nil
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Bool before the numbers: JSONDecoder does not read true as 1 nor 1 as true, but the order
        // makes sure a Bool never becomes a number.
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let values = try? container.decode([JSONValue].self) {
            self = .array(values)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null:
            try container.encodeNil()
        case .bool(let value):
            try container.encode(value)
        case .int(let value):
            try container.encode(value)
        case .double(let value):
            try container.encode(value)
        case .string(let value):
            try container.encode(value)
        case .array(let values):
            try container.encode(values)
        case .object(let values):
            try container.encode(values)
        }
    }
}
