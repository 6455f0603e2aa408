import CoreML
import DeepSquareCore
import Foundation
import ImageIO
import UIKit
import Vision

enum ClassifierError: LocalizedError {
    case modelMissing
    case noResults
    case inputUnavailable(String)

    var errorDescription: String? {
        switch self {
        case .modelMissing:
            return "No model in the app: run apps/ios/install-bundle.sh BUNDLE, then xcodegen, and build again."
        case .noResults:
            return "The model returned no classification (is it a deepsquare Core ML classifier?)."
        case .inputUnavailable(let why):
            return "Cannot make the model's input: \(why)"
        }
    }
}

/// The exported Core ML classifier run through Vision. The model normalizes (x/255 - mean)/std
/// itself; Vision scales the whole photo to input_size x input_size (`.scaleFill`, like the
/// Python runtime's resize of the whole image) and hands back one observation per class.
final class Classifier: @unchecked Sendable {
    let model: MLModel
    let meta: BundleMeta
    let modelURL: URL
    /// Where the labels and sizes came from: "model metadata" or "model.json".
    let metaSource: String
    private let visionModel: VNCoreMLModel

    /// Xcode compiles Resources' model.mlpackage to model.mlmodelc inside the app.
    static func bundledModelURL(in bundle: Bundle = Bundle.main) -> URL? {
        return bundle.url(forResource: "model", withExtension: "mlmodelc")
    }

    init(modelURL: URL, computeUnits: MLComputeUnits = MLComputeUnits.all, bundle: Bundle = Bundle.main) throws {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let model = try MLModel(contentsOf: modelURL, configuration: configuration)
        let found = try Classifier.readMeta(model: model, bundle: bundle)
        self.model = model
        self.meta = found.meta
        self.metaSource = found.source
        self.modelURL = modelURL
        self.visionModel = try VNCoreMLModel(for: model)
    }

    /// The `deepsquare.*` creator-defined metadata of the model; model.json in the app when the
    /// model has none (or it does not check out).
    static func readMeta(model: MLModel, bundle: Bundle) throws -> (meta: BundleMeta, source: String) {
        let metadata = model.modelDescription.metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String]
        do {
            let meta = try BundleMeta.fromMetadata(metadata ?? [:])
            return (meta: meta, source: "model metadata")
        } catch {
            guard let url = bundle.url(forResource: "model", withExtension: "json") else {
                throw error
            }
            let meta = try BundleMeta.fromJSON(Data(contentsOf: url))
            return (meta: meta, source: "model.json")
        }
    }

    /// Top-5 of one upright-or-tagged image (call off the main thread).
    func classify(_ image: CGImage, orientation: CGImagePropertyOrientation) throws -> [Prediction] {
        let request = VNCoreMLRequest(model: visionModel)
        request.imageCropAndScaleOption = VNImageCropAndScaleOption.scaleFill
        let handler = VNImageRequestHandler(cgImage: image, orientation: orientation, options: [:])
        try handler.perform([request])
        let observations = request.results as? [VNClassificationObservation] ?? []
        if observations.isEmpty {
            throw ClassifierError.noResults
        }
        var probabilities: [String: Double] = [:]
        for observation in observations {
            probabilities[observation.identifier] = Double(observation.confidence)
        }
        return Classification.topK(probabilities, classes: meta.classes, k: 5)
    }
}

extension CGImagePropertyOrientation {
    /// UIImage keeps the EXIF orientation beside the pixels; Vision applies it (Python's loader
    /// transposes to upright the same way).
    init(_ orientation: UIImage.Orientation) {
        switch orientation {
        case .up:
            self = .up
        case .upMirrored:
            self = .upMirrored
        case .down:
            self = .down
        case .downMirrored:
            self = .downMirrored
        case .left:
            self = .left
        case .leftMirrored:
            self = .leftMirrored
        case .right:
            self = .right
        case .rightMirrored:
            self = .rightMirrored
        @unknown default:
            self = .up
        }
    }
}

extension ComputeUnitsName {
    var mlComputeUnits: MLComputeUnits {
        switch self {
        case .cpuOnly:
            return MLComputeUnits.cpuOnly
        case .cpuAndGPU:
            return MLComputeUnits.cpuAndGPU
        case .all:
            return MLComputeUnits.all
        }
    }
}
