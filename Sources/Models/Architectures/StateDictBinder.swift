import Engine
import Tensors

/// Binds a state dict to an architecture by name: every tensor the model needs must exist
/// with exactly the expected shape, and every tensor in the file must be claimed by the model.
///
/// ```swift
/// var binder = StateDictBinder(entries)
/// let w = try binder.take("layer1.0.conv1.0.weight", shape: [8, 8, 3, 3])
/// binder.allow("layer1.0.bn1.0.num_batches_tracked", shape: [])   // bookkeeping: claimed, unused
/// try binder.finish()          // throws .unexpectedTensors naming the leftovers
/// ```
/// Errors name the key (``InferenceError/Reason/missingTensor(_:expected:)``,
/// ``InferenceError/Reason/tensorShape(_:expected:found:)``).
package struct StateDictBinder: Sendable {
    /// The state dict by key (as loaded; integer tensors are converted on ``take(_:shape:)``).
    package let tensors: [String: Tensor]
    private let order: [String]
    private var claimed = Set<String>()
    /// Keys claimed so far, in claim order (for listings).
    package private(set) var claimedOrder: [String] = []
    /// Random mode: every tensor the model asked for (taken, required or allowed), with its
    /// shape and whether the forward needs it, in request order (the key set of a fresh model).
    package private(set) var declared: [(key: String, shape: [Int], required: Bool)] = []
    /// Random mode: ``take(_:shape:)`` synthesises tensors (see ``init(random:)``).
    private var random: UInt64?
    /// Synthesised tensors are zeros (shape-only builds).
    private var zeros = false

    /// A binder over `entries` (state-dict order is kept for error messages).
    package init(_ entries: [(name: String, tensor: Tensor)]) {
        var d: [String: Tensor] = [:]
        var order: [String] = []
        for (k, t) in entries where d[k] == nil {
            d[k] = t
            order.append(k)
        }
        tensors = d
        self.order = order
    }

    /// A binder that invents every tensor it is asked for: He-uniform conv/linear weights,
    /// batch-norm statistics near identity (seeded; for benchmarks without a checkpoint).
    /// With `seed` nil every tensor is zeros: a fast shape-only build for `trace`.
    package init(random seed: UInt64?) {
        tensors = [:]
        order = []
        random = (seed ?? 0) &+ 0x9E37_79B9_7F4A_7C15
        zeros = seed == nil
    }

    /// The float32 tensor `key` with shape `shape`; claims it.
    /// - Throws: `.missingTensor` / `.tensorShape` naming `key`.
    package mutating func take(_ key: String, shape: [Int]) throws(InferenceError) -> Tensor {
        if random != nil {
            claim(key)
            declared.append((key, shape, true))
            return synthesise(key, shape)
        }
        guard let t = tensors[key] else { throw InferenceError(.missingTensor(key, expected: shape)) }
        guard t.shape == shape else {
            throw InferenceError(.tensorShape(key, expected: shape, found: t.shape))
        }
        claim(key)
        return t.dtype == .float32 ? t : Tensor(floats: t.floats(), shape: t.shape)
    }

    /// The values of `key` as floats (see ``take(_:shape:)``).
    package mutating func floats(_ key: String, shape: [Int]) throws(InferenceError) -> [Float] {
        try take(key, shape: shape).floats()
    }

    /// Claims `key` if present (checking its shape when `shape` is given); absent is fine.
    /// Used for bookkeeping tensors the forward never reads (`num_batches_tracked`, `auxil`).
    package mutating func allow(_ key: String, shape: [Int]?) throws(InferenceError) {
        if random != nil {
            if let shape { declared.append((key, shape, false)) }
            return
        }
        guard let t = tensors[key] else { return }
        if let shape, t.shape != shape {
            throw InferenceError(.tensorShape(key, expected: shape, found: t.shape))
        }
        claim(key)
    }

    /// Claims `key`, which must exist (shape checked when given).
    package mutating func require(_ key: String, shape: [Int]?) throws(InferenceError) {
        if random != nil {
            if let shape { declared.append((key, shape, true)) }
            return
        }
        guard tensors[key] != nil else {
            throw InferenceError(.missingTensor(key, expected: shape ?? []))
        }
        try allow(key, shape: shape)
    }

    /// True in random mode (``init(random:)``).
    package var isRandom: Bool { random != nil }

    /// True when the state dict has `key`.
    package func has(_ key: String) -> Bool { tensors[key] != nil }

    /// Throws `.unexpectedTensors` listing (in file order) every key nothing claimed.
    package func finish() throws(InferenceError) {
        let extra = order.filter { !claimed.contains($0) }
        guard extra.isEmpty else { throw InferenceError(.unexpectedTensors(extra)) }
    }

    private mutating func synthesise(_ key: String, _ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        if zeros { return Tensor(floats: [Float](repeating: 0, count: n), shape: shape) }
        // value = offset + scale * u, or scale * u (no offset: keeps the exact float ops).
        let scale: Float
        var offset: Float? = nil
        if key.hasSuffix("running_var") {
            scale = 0.25
            offset = 1
        } else if key.hasSuffix("running_mean") || key.hasSuffix("bias") {
            scale = 0.1
        } else if shape.count <= 1 {
            scale = 0.25
            offset = 1
        } else {
            scale = (6 / Float(max(shape.dropFirst().reduce(1, *), 1))).squareRoot()
        }
        // Uniform [-1, 1), one generator for the whole tensor, continued by the next tensor.
        var g = SplitMix64(seed: random!)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let u = g.nextSignedUnit()
            if let offset { values[i] = offset + scale * u } else { values[i] = scale * u }
        }
        random = g.state
        return Tensor(floats: values, shape: shape)
    }

    private mutating func claim(_ key: String) {
        if claimed.insert(key).inserted { claimedOrder.append(key) }
    }
}
