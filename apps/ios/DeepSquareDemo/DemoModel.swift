import CoreML
import DeepSquareCore
import Foundation
import ImageIO
import PhotosUI
import SwiftUI
import UIKit

/// The state of the main screen: the model, the photo and its top-5.
@MainActor
final class DemoModel: ObservableObject {
    @Published var classifier: Classifier?
    @Published var loadError: String?
    @Published var image: UIImage?
    @Published var predictions: [Prediction] = []
    @Published var status: String = ""
    /// The golden self-check's message; nothing is classified unless it passed.
    @Published var selfCheck: String = ""
    private var selfCheckPassed = true

    init() {
        loadClassifier()
    }

    func loadClassifier() {
        guard let url = Classifier.bundledModelURL() else {
            loadError = ClassifierError.modelMissing.localizedDescription
            return
        }
        do {
            let loaded = try Classifier(modelURL: url)
            classifier = loaded
            loadError = nil
            selfCheck = "Running the self-check..."
            Task {
                let outcome = await Task.detached(priority: .userInitiated) {
                    return Result { try loaded.selfCheck() }
                }.value
                switch outcome {
                case .success(let result):
                    selfCheckPassed = result?.passed ?? true
                    selfCheck = result?.message ?? "No golden file in this bundle: self-check not run."
                case .failure(let error):
                    selfCheckPassed = false
                    selfCheck = "Self-check could not run: \(error.localizedDescription)"
                }
            }
        } catch {
            loadError = "Cannot load the model: \(error.localizedDescription)"
        }
    }

    /// A photo from PhotosPicker.
    func load(_ item: PhotosPickerItem?) async {
        guard let item = item else {
            return
        }
        do {
            guard let data = try await item.loadTransferable(type: Data.self), let picked = UIImage(data: data) else {
                status = "That item is not an image the app can decode."
                return
            }
            classify(picked)
        } catch {
            status = "Cannot load the photo: \(error.localizedDescription)"
        }
    }

    /// Runs the model off the main thread and shows its top-5.
    func classify(_ picked: UIImage) {
        image = picked
        predictions = []
        guard let classifier = classifier else {
            status = loadError ?? ClassifierError.modelMissing.localizedDescription
            return
        }
        guard selfCheckPassed else {
            status = selfCheck
            return
        }
        guard let cgImage = picked.cgImage else {
            status = "The photo has no bitmap to classify."
            return
        }
        let orientation = CGImagePropertyOrientation(picked.imageOrientation)
        status = "Classifying..."
        Task {
            let start = Date()
            let result = await Task.detached(priority: .userInitiated) {
                return Result { try classifier.classify(cgImage, orientation: orientation) }
            }.value
            let elapsed = Date().timeIntervalSince(start) * 1000
            switch result {
            case .success(let top):
                predictions = top
                let meta = classifier.meta
                status = "\(meta.arch) \(meta.variant), \(meta.inputSize) px: " + String(format: "%.1f ms", elapsed)
                    + " (Vision, all compute units)"
            case .failure(let error):
                status = "Classification failed: \(error.localizedDescription)"
            }
        }
    }
}
