import Tensors

/// Throughput of the bit-packed binary convolution (`qtools bench --binary-gemm`): the XOR +
/// popcount GEMM core alone, the whole layer (packing, gathering, GEMM, output transform),
/// and the engine's float convolution of the same shape, each on one thread. Returns
/// numbers, never prints.
public enum BinaryConvBenchmark {
    /// A 3x3 (or `kernel`) binary conv layer with "same" padding on a `height x width` image.
    public struct Shape: Sendable, Equatable {
        public var inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, stride: Int

        public init(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int = 3, stride: Int = 1) {
            self.inChannels = inChannels
            self.outChannels = outChannels
            self.height = height
            self.width = width
            self.kernel = kernel
            self.stride = stride
        }

        /// The 3x3 convs of ResNet-18's four stages at 224x224 (Bi-Real / XNOR binary layers).
        public static let resnet18Stages: [Shape] = [
            Shape(inChannels: 64, outChannels: 64, height: 56, width: 56),
            Shape(inChannels: 128, outChannels: 128, height: 28, width: 28),
            Shape(inChannels: 256, outChannels: 256, height: 14, width: 14),
            Shape(inChannels: 512, outChannels: 512, height: 7, width: 7),
        ]
    }

    /// Timings of one shape on one code path (milliseconds; G bit-MAC/s = binary
    /// multiply-accumulates, `Cout * pixels * Cin * k * k`, per second, from the fastest run).
    public struct Result: Sendable {
        public var shape: Shape
        public var path: BitKernelPath
        /// GEMM dimensions: rows (Cout), columns (output pixels), depth in bits (Cin * k * k).
        public var m: Int, n: Int, k: Int
        /// The GEMM core (`qk_bconv_gemm` on gathered strips, output transform included).
        public var gemmMinMs: Double, gemmMedianMs: Double
        /// The planned layer's kernel time (packing, gathering, GEMM, output transform).
        public var layerMinMs: Double, layerMedianMs: Double
        /// The engine's float conv of the same shape on ±1 values (as planned: GEMM or Winograd), kernel time.
        public var floatMinMs: Double, floatMedianMs: Double
        /// Binary multiply-accumulates of one layer.
        public var bitMACs: Double { Double(m) * Double(n) * Double(k) }
        public var gemmGBitMACsPerSecond: Double { bitMACs / gemmMinMs / 1e6 }
        public var layerGBitMACsPerSecond: Double { bitMACs / layerMinMs / 1e6 }
        public var gemmMedianGBitMACsPerSecond: Double { bitMACs / gemmMedianMs / 1e6 }
    }

    private static func stats(_ ns: [UInt64]) -> (min: Double, median: Double) {
        let s = ns.sorted().map { Double($0) / 1e6 }
        return (s.first ?? 0, s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// Kernel time of each run (the plan's steps, without copying the input in and the output
    /// out), after one untimed run.
    private static func time(_ exec: Executor, _ input: [String: Tensor], runs: Int) throws(InferenceError) -> [UInt64] {
        _ = try exec.run(input)
        var ns: [UInt64] = []
        for _ in 0..<max(runs, 1) {
            var profile = Profile()
            _ = try exec.run(input, profile: &profile)
            ns.append(profile.steps.reduce(0) { $0 + $1.nanoseconds })
        }
        return ns
    }

    /// Times `shape` on `path` with seeded random ±1 weights and a random input, `runs` timed
    /// runs of each measurement after one untimed run, one thread.
    public static func measure(_ shape: Shape, path: BitKernelPath, runs: Int = 20) throws(InferenceError) -> Result {
        guard path.isSupported else { throw InferenceError(.unsupported("bit kernel path \(path) does not run on this CPU")) }
        var rng = SplitMix64(seed: 2024)
        let (cin, cout, kk) = (shape.inChannels, shape.outChannels, shape.kernel)
        let codes: [Float] = (0..<(cout * cin * kk * kk)).map { _ in rng.bool() ? 1 : -1 }
        let weights = try PackedConvWeights(codes: codes, shape: [cout, cin, kk, kk], encoding: .binary)
        let conv = Conv2dAttributes(stride: shape.stride, padding: kk / 2)
        let a = BinaryConv2dAttributes(weights: weights, input: .sign, conv: conv, padCode: 1)
        let inputShape = [1, cin, shape.height, shape.width]
        let x = rng.floats(inputShape.reduce(1, *))
        let g = try ShapeInference.binaryConv(a, input: inputShape)
        // The GEMM core.
        let gemm = stats(BinaryConv.timeGemm(a, g, path: path, input: x, runs: runs))
        // The planned layer, and the float conv of the same codes.
        var bg = Graph()
        bg.addInput("x")
        bg.add(.binaryConv2d(a), name: "bconv", inputs: ["x"])
        bg.markOutput("bconv")
        var fg = Graph()
        fg.addInput("x")
        fg.addConstant("w", Tensor(floats: codes, shape: [cout, cin, kk, kk]))
        fg.add(.conv2d(conv), name: "conv", inputs: ["x", "w"])
        fg.markOutput("conv")
        let input = ["x": Tensor(floats: x, shape: inputShape)]
        let layer = stats(try time(Executor(graph: bg, threads: 1, options: PlanOptions(bitKernelPath: path)), input, runs: runs))
        let float = stats(try time(Executor(graph: fg, threads: 1), input, runs: runs))
        return Result(
            shape: shape, path: path, m: cout, n: g.outPixels, k: cin * kk * kk, gemmMinMs: gemm.min, gemmMedianMs: gemm.median,
            layerMinMs: layer.min, layerMedianMs: layer.median, floatMinMs: float.min, floatMedianMs: float.median)
    }
}
