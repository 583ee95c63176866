import Engine

/// `var-mean` weight normalisation of the DoReFa family and XNOR (seed-reference §11.4).
///
/// ```
/// std, mean = torch.std_mean(w.reshape(ng, -1, 1, 1, 1), 1)    # unbiased, detached
/// w = (w − mean) / (std + 0)                                    # no epsilon
/// ```
/// The `[ng,1,1,1]` statistics broadcast against the `[out, …]` weight, so only `ng = 1` and
/// `ng = out` work in QTool; anything else is rejected here. With `adaptive_restore` the
/// quantized value is mapped back as `y·std + mean`.
struct WeightNormalization: Equatable, Sendable {
    /// Per-group means and standard deviations.
    var mean: [Float], std: [Float]
    /// Elements per statistics group.
    var groupSize: Int

    /// Computes the statistics of `w` (shape `shape`) over `groups` groups.
    init(_ w: [Float], shape: [Int], groups: Int) throws {
        guard groups == 1 || groups == shape[0] else {
            throw QuantizerError(
                .unsupported(
                    "var-mean with norm group \(groups) does not broadcast against weight \(QuantizerError.dims(shape)) (QTool supports 1 or out)"
                ))
        }
        let size = w.count / groups
        let stats = (0..<groups).map { g in TorchReduction.meanStd(w[(g * size)..<((g + 1) * size)])
        }
        groupSize = size
        mean = stats.map(\.mean)
        std = stats.map(\.std)
    }

    /// `(w − mean) / std` per group.
    func normalise(_ w: [Float]) -> [Float] {
        w.indices.map { i in
            let g = i / groupSize
            return (w[i] - mean[g]) / std[g]
        }
    }

    /// `y·std + mean` per group (`adaptive_restore`).
    func restore(_ y: [Float]) -> [Float] {
        y.indices.map { i in
            let g = i / groupSize
            return y[i] * std[g] + mean[g]
        }
    }
}
