#if canImport(CoreML)
import BBEGrouper
import CoreML
import Foundation

extension BBEPredictor {
    /// Settings of a ``BBEPredictor`` (in the manner of `StableDiffusionPipeline.Configuration`).
    public struct Configuration {
        /// Where Core ML may run the model (default `.all`: Neural Engine, GPU and CPU).
        public var computeUnits: MLComputeUnits
        /// Grouper thresholds; `nil` (default) uses the values of the model's `"bbe"` metadata.
        public var grouper: GrouperConfiguration?
        /// Upsample the label map to the original image size (docs/grouper.md, last section). Turn off to
        /// draw the `H x W` map yourself (cheaper for live video).
        public var upsampleLabels: Bool

        public init(computeUnits: MLComputeUnits = .all, grouper: GrouperConfiguration? = nil,
                    upsampleLabels: Bool = true) {
            self.computeUnits = computeUnits
            self.grouper = grouper
            self.upsampleLabels = upsampleLabels
        }
    }
}
#endif
