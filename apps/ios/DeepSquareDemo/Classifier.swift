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
    case differentExports(String, String)

    var errorDescription: String? {
        switch self {
        case .modelMissing:
            return "No model in the app: run apps/ios/install-bundle.sh BUNDLE, then xcodegen, and build again."
        case .noResults:
            return "The model returned no classification (is it a deepsquare Core ML classifier?)."
        case .inputUnavailable(let why):
            return "Cannot make the model's input: \(why)"
        case .differentExports(let model, let json):
            return "The Core ML model (bundle \(model)) and model.json (bundle \(json)) come from different exports: "
                + "install one bundle with install-bundle.sh."
        }
    }
}

/// The exported Core ML classifier run through Vision. The model takes the picture (ImageType) and normalizes
/// (x/255 - mean)/std itself; Vision scales the whole photo to input_size x input_size (`.scaleFill`, like the
/// Python runtime's resize of the whole image) and hands back one observation per class. Labels, sizes and the
/// bundle id come from model.json (decoded with Codable and checked by `BundleMeta.load`).
final class Classifier: @unchecked Sendable {
    let model: MLModel
    let meta: BundleMeta
    let modelURL: URL
    /// Where the labels and sizes came from.
    let metaSource = "model.json"
    private let visionModel: VNCoreMLModel

    /// Xcode compiles Resources' model.mlpackage to model.mlmodelc inside the app.
    static func bundledModelURL(in bundle: Bundle = Bundle.main) -> URL? {
        return bundle.url(forResource: "model", withExtension: "mlmodelc")
    }

    init(modelURL: URL, computeUnits: MLComputeUnits = MLComputeUnits.all, bundle: Bundle = Bundle.main) throws {
        guard let jsonURL = bundle.url(forResource: "model", withExtension: "json") else {
            throw ClassifierError.modelMissing
        }
        let meta = try BundleMeta.load(Data(contentsOf: jsonURL))
        _ = try meta.format("coreml")
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let model = try MLModel(contentsOf: modelURL, configuration: configuration)
        // The model file carries the bundle's id in its creator-defined metadata: it must be model.json's.
        let metadata = model.modelDescription.metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String]
        if let modelID = metadata?["deepsquare.id"], let jsonID = meta.id, modelID != jsonID {
            throw ClassifierError.differentExports(modelID, jsonID)
        }
        self.model = model
        self.meta = meta
        self.modelURL = modelURL
        self.visionModel = try VNCoreMLModel(for: model)
    }

    /// Class name -> probability for one upright-or-tagged image (call off the main thread).
    func probabilities(_ image: CGImage, orientation: CGImagePropertyOrientation) throws -> [String: Double] {
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
        return probabilities
    }

    /// Top-5 of one upright-or-tagged image (call off the main thread).
    func classify(_ image: CGImage, orientation: CGImagePropertyOrientation) throws -> [Prediction] {
        return Classification.topK(try probabilities(image, orientation: orientation), classes: meta.classes, k: 5)
    }

    /// The golden self-check: golden.png (already input_size x input_size) through the same Vision path as a
    /// photo, compared with golden.json's coreml values. nil when the bundle has no golden file (schema /1).
    func selfCheck(bundle: Bundle = Bundle.main) throws -> SelfCheckResult? {
        guard meta.golden != nil,
              let jsonURL = bundle.url(forResource: "golden", withExtension: "json"),
              let pngURL = bundle.url(forResource: "golden", withExtension: "png") else {
            return nil
        }
        let golden = try GoldenFile.load(Data(contentsOf: jsonURL), meta: meta)
        guard let source = CGImageSourceCreateWithURL(pngURL as CFURL, nil),
              let image = CGImageSourceCreateImageAtIndex(source, 0, nil) else {
            throw ClassifierError.inputUnavailable("golden.png cannot be decoded")
        }
        let found = try probabilities(image, orientation: CGImagePropertyOrientation.up)
        return SelfCheck.compare(probabilities: found, classes: meta.classes, expected: try golden.expected("coreml"))
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
