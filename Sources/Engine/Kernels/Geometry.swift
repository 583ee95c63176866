/// Resolved sizes of one convolution or pooling call, computed once at plan time.
///
/// Kernels trust these (shapes were validated by the planner) and only `precondition`
/// buffer sizes. Layout is NCHW, row-major; weights are `[Cout, Cin/groups, kH, kW]`.
package struct ConvGeometry: Sendable, Equatable {
    package var batch: Int
    package var inChannels: Int, inHeight: Int, inWidth: Int
    package var outChannels: Int, outHeight: Int, outWidth: Int
    package var kernelH: Int, kernelW: Int
    package var strideH: Int, strideW: Int
    package var padTop: Int, padLeft: Int
    package var dilationH: Int, dilationW: Int
    package var groups: Int

    /// Input channels per group.
    package var groupInChannels: Int { inChannels / groups }
    /// Output channels per group.
    package var groupOutChannels: Int { outChannels / groups }
    /// GEMM depth per group: `Cin/groups * kH * kW`.
    package var patchSize: Int { groupInChannels * kernelH * kernelW }
    /// Output pixels per image.
    package var outPixels: Int { outHeight * outWidth }
    /// Elements of one input image / output image.
    package var inImage: Int { inChannels * inHeight * inWidth }
    package var outImage: Int { outChannels * outHeight * outWidth }
    /// A 1x1, stride-1, unpadded conv: the input image already is the GEMM's B matrix.
    package var isPointwise: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padTop == 0
            && padLeft == 0 && outHeight == inHeight && outWidth == inWidth
    }
    /// One input channel per group (depthwise, with any channel multiplier).
    package var isDepthwise: Bool { groupInChannels == 1 && groups > 1 }

    /// Creates a geometry; `outHeight`/`outWidth` come from the caller (shape inference).
    package init(
        batch: Int, inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int,
        outHeight: Int, outWidth: Int, kernelH: Int, kernelW: Int, strideH: Int, strideW: Int,
        padTop: Int, padLeft: Int, dilationH: Int, dilationW: Int, groups: Int
    ) {
        self.batch = batch
        self.inChannels = inChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outChannels = outChannels
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH
        self.strideW = strideW
        self.padTop = padTop
        self.padLeft = padLeft
        self.dilationH = dilationH
        self.dilationW = dilationW
        self.groups = groups
    }
}

/// Resolved sizes of one pooling call (see ``Pool2dAttributes`` for the rules).
package struct PoolGeometry: Sendable, Equatable {
    package var batch: Int, channels: Int
    package var inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int
    package var kernelH: Int, kernelW: Int, strideH: Int, strideW: Int
    package var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    package var dilationH: Int, dilationW: Int
    package var countIncludePad: Bool

    /// Number of `H x W` planes.
    package var planes: Int { batch * channels }

    /// Creates a geometry.
    package init(
        batch: Int, channels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int,
        kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padding: Padding2d,
        dilationH: Int, dilationW: Int, countIncludePad: Bool
    ) {
        self.batch = batch
        self.channels = channels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH
        self.strideW = strideW
        self.padTop = padding.top
        self.padLeft = padding.left
        self.padBottom = padding.bottom
        self.padRight = padding.right
        self.dilationH = dilationH
        self.dilationW = dilationW
        self.countIncludePad = countIncludePad
    }

    /// PyTorch's average-pool window for output row `o` along one dim:
    /// `(start, end, divisorSpan)`, where start/end are clipped to the input and
    /// `divisorSpan` is the window clipped to the padded extent.
    @inline(__always)
    package static func avgWindow(
        _ o: Int, stride: Int, kernel: Int, padBefore: Int, padAfter: Int, size: Int
    ) -> (start: Int, end: Int, padded: Int) {
        let s = o * stride - padBefore
        let e = min(s + kernel, size + padAfter)
        return (max(s, 0), min(e, size), e - s)
    }
}

/// Per-channel epilogue applied after a conv/linear/add: optional activation clamp.
package enum Activation: Sendable, Equatable {
    case none
    case relu
    /// `min(max(x, lo), hi)` (hardtanh, clamp, relu6).
    case clamp(lo: Float, hi: Float)

    /// The activation as a clamp to `lo...hi` (infinite bounds where there is none), the form
    /// the C kernels' epilogues take.
    package var bounds: (lo: Float, hi: Float) {
        switch self {
        case .none: (-.infinity, .infinity)
        case .relu: (0, .infinity)
        case .clamp(let lo, let hi): (lo, hi)
        }
    }

    /// Applies the activation to one value.
    @inline(__always)
    package func apply(_ x: Float) -> Float {
        switch self {
        case .none: return x
        case .relu: return max(x, 0)
        case .clamp(let lo, let hi): return min(max(x, lo), hi)
        }
    }
}
