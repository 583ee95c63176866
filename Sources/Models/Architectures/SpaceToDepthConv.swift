import Engine

extension ModelAssembler {
    /// QTool's `TResNetStem` module at `path` (models/layers.py; seed-reference §9.5): a
    /// space-to-depth by `factor` (§7.6 layout: output channel `c·s² + dy·s + dx` at `(i, j)`
    /// is input channel `c` at `(i·s + dy, j·s + dx)`, which is `pixel_unshuffle`), then a
    /// 1x1 (padding 0) or 3x3 (padding 1) conv `cin·s² -> cout` at `path.conv`.
    ///
    /// Used as the network stem (`TResNetStem`: factor 4, `TResNetStemMaxPool`: factor 2; always
    /// full precision) and as the `c` step of a `ReShapeResolution` shrink path (factor = the
    /// block stride; quantized unless `real_skip`).
    mutating func spaceToDepthConv(
        _ path: String, _ x: String, in cin: Int, out cout: Int, factor: Int, kernel: Int, quantized: Bool
    ) throws(InferenceError) -> String {
        let v = op(.spaceToDepth(blockSize: factor), path + ".space_to_depth", x)
        return try conv(
            path + ".conv", v, in: cin * factor * factor, out: cout, kernel: kernel, padding: kernel == 3 ? 1 : 0,
            quantized: quantized)
    }

    /// Claims the tensors of a module QTool builds but never runs (a BN or PReLU of a block that
    /// `ldn3x3` reduces to its shrink path): they must be in the checkpoint, with their shapes.
    mutating func unusedBatchNorm(_ path: String, channels c: Int) throws(InferenceError) {
        for t in ["weight", "bias", "running_mean", "running_var"] {
            try binder.require("\(path).\(t)", shape: [c])
        }
        try binder.allow(path + ".num_batches_tracked", shape: [])
    }

    /// See ``unusedBatchNorm(_:channels:)``: `actv(args)` owns a tensor only as PReLU.
    mutating func unusedActivation(_ path: String) throws(InferenceError) {
        if activationKind == "PReLU" { try binder.require(path + ".weight", shape: [1]) }
    }
}
