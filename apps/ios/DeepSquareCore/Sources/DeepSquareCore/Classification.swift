import Foundation

/// One row of a top-k list.
public struct Prediction: Equatable, Sendable {
    public let index: Int
    public let label: String
    public let probability: Double

    public init(index: Int, label: String, probability: Double) {
        self.index = index
        self.label = label
        self.probability = probability
    }
}

public enum Classification {
    /// Softmax in Double, shifted by the largest logit (as apps/testdata/make_golden.py does).
    public static func softmax(_ logits: [Double]) -> [Double] {
        guard let largest = logits.max() else {
            return []
        }
        let shifted = logits.map { exp($0 - largest) }
        let total = shifted.reduce(0, +)
        return shifted.map { $0 / total }
    }

    /// The k most probable classes of a probability (or logit) array; ties go to the lower class index.
    public static func topK(_ probabilities: [Double], labels: [String], k: Int) -> [Prediction] {
        let order = probabilities.indices.sorted { a, b in
            if probabilities[a] != probabilities[b] {
                return probabilities[a] > probabilities[b]
            }
            return a < b
        }
        return order.prefix(max(k, 0)).map { i in
            Prediction(index: i, label: i < labels.count ? labels[i] : "class \(i)", probability: probabilities[i])
        }
    }

    /// The k most probable classes of a label -> probability dictionary (Core ML's `classLabel_probs`,
    /// or Vision's observations); ties go to the lower index in `classes`, labels not in `classes` come
    /// after them (index -1), by name.
    public static func topK(_ probabilities: [String: Double], classes: [String], k: Int) -> [Prediction] {
        var indexOf: [String: Int] = [:]
        for (i, name) in classes.enumerated() where indexOf[name] == nil {
            indexOf[name] = i
        }
        let rows = probabilities.map { entry in
            Prediction(index: indexOf[entry.key] ?? -1, label: entry.key, probability: entry.value)
        }
        let sorted = rows.sorted { a, b in
            if a.probability != b.probability {
                return a.probability > b.probability
            }
            let rankA = a.index < 0 ? Int.max : a.index
            let rankB = b.index < 0 ? Int.max : b.index
            if rankA != rankB {
                return rankA < rankB
            }
            return a.label < b.label
        }
        return Array(sorted.prefix(max(k, 0)))
    }
}
