import BBEGrouper
import BBEKit
import CoreGraphics
import CoreML
import Foundation

/// Loads the bundled model once and runs predictions on a serial background queue (a ``BBEPredictor`` is
/// not thread-safe).
@MainActor
final class PredictorStore: ObservableObject {
    enum State {
        case loading
        case ready(BBEModelMetadata, String)
        case failed(String)
    }

    @Published private(set) var state: State = .loading
    @Published var computeUnits: MLComputeUnits = .all

    /// Serial queue owning `predictor`.
    nonisolated let queue = DispatchQueue(label: "bbe.predictor", qos: .userInitiated)
    nonisolated(unsafe) private(set) var predictor: BBEPredictor?

    func load() async {
        guard predictor == nil else { return }
        await reload()
    }

    func reload() async {
        state = .loading
        do {
            let model = try await BBEModel.loadBundled(computeUnits: computeUnits)
            let predictor = try BBEPredictor(model: model, configuration: .init(computeUnits: computeUnits))
            queue.async { self.predictor = predictor }
            state = .ready(model.metadata, model.name)
        } catch {
            state = .failed(error.localizedDescription)
        }
    }

    /// Runs `body` with the predictor on the prediction queue.
    nonisolated func withPredictor<T>(_ body: @escaping (BBEPredictor) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                guard let predictor = self.predictor else {
                    continuation.resume(throwing: BBEKitError.modelNotFound("the model is still loading"))
                    return
                }
                continuation.resume(with: Result { try body(predictor) })
            }
        }
    }
}
