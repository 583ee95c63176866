import Engine
import Models
import Synchronization
import Tensors

/// A train-mode pass over an engine ``Graph`` (the graph `Models` builds from a config and a
/// checkpoint, so one model definition serves inference and training): a forward that keeps
/// every value (a tape) with batch norm on batch statistics, and a backward that returns the
/// gradient of every constant or variable the outputs depend on.
///
/// The values of constants come from a `state` map (name -> floats) that the trainer owns and
/// updates; the graph's own constants are its initial values.
package struct TrainingGraph: Sendable {
    /// The graph.
    package let graph: Graph
    /// Node indices in execution order.
    private let order: [Int]
    /// The arithmetic of the convolutions, batch norms and activations (see ``Precision``).
    package var precision: Precision = .exact
    /// Threads of the ``Precision/fast`` kernels (the exact path runs on one).
    package var threads: Int = 1
    /// A lean forward keeps on the tape only the values a backward reads (``backwardReads``)
    /// and the graph outputs: every other value is dropped once its last reader has run.
    package var lean = false
    /// The values some node's backward rule reads from the tape: the data input of conv,
    /// batch norm, activations, max pooling, linear, mul, channel affine and PReLU, and their
    /// weights (scales, slopes); the input of a
    /// quantize node, which its training pass may hold for its backward (the multi-threaded
    /// LSQ pass holds just that; other passes hold arrays of their own, not on the tape).
    package let backwardReads: Set<String>
    /// How many nodes read each value.
    private let readers: [String: Int]
    /// Each node's output shape for the input shapes it last saw: shape inference dry-runs a
    /// quantizer on the whole input (up to 4M elements), 9% of an LSQ training step when it
    /// ran every step.
    private let shapeMemo = ShapeMemo()

    /// How the heavy ops compute.
    package enum Precision: Sendable {
        /// Convolution GEMMs in double (``ConvGradient``), everything on one thread: the
        /// exactness path the golden steps are checked with.
        case exact
        /// Convolutions in float32 (``FastConvGradient``), batch norm in float32 lanes
        /// (``FastBatchNorm``), activations split over ``TrainingGraph/threads``
        /// (``ParallelLayerGradients``, bit-identical to the exact path's).
        case fast
    }

    /// What the forward keeps for the backward.
    package struct Tape: Sendable {
        /// Every value (inputs, constants, node outputs) by name.
        package var values: [String: [Float]] = [:]
        /// Every value's shape.
        package var shapes: [String: [Int]] = [:]
        /// The batch statistics of each train-mode batch norm, by node name.
        package var batchStatistics: [String: LayerGradients.BatchStatistics] = [:]
        /// The training pass (output and backward) of each quantize node, by node name.
        package var quantizers: [String: QuantizerTrainPass] = [:]

        /// The tensor of `value`.
        package func tensor(_ value: String) -> Tensor? {
            values[value].map { Tensor(floats: $0, shape: shapes[value]!) }
        }
    }

    /// Checks that every op has a training rule.
    /// - Throws: ``TrainError`` `.engine` for an invalid graph, `.unsupported` naming the node
    ///   of an op that cannot be trained yet.
    package init(_ graph: Graph) throws(TrainError) {
        do { order = try graph.validate(computedWeights: true) } catch { throw TrainError(.engine(error)) }
        for i in order {
            let n = graph.nodes[i]
            switch n.op {
            case .conv2d, .batchNorm, .relu, .hardtanh, .clamp, .maxPool2d, .avgPool2d, .adaptiveAvgPool2d,
                .linear, .add, .flatten, .identity, .pad, .concat, .channelAffine, .mul, .prelu:
                continue
            case .quantize(let q):
                guard let f = q.function as? any TrainableQuantizeFunction else {
                    throw TrainError(.unsupported("the \(q.method) quantize op \(q.name) has no training mode"), node: n.name)
                }
                do { try f.checkTrainable() } catch { throw TrainError(.unsupported("\(error)"), node: n.name) }
                if let missing = f.parameterKeys.first(where: { graph.constants[$0] == nil }) {
                    throw TrainError(
                        .unsupported("quantizer parameter \(missing) is not a graph variable (build the model for training)"), node: n.name)
                }
            default:
                throw TrainError(.unsupported("op \(n.op.typeName)"), node: n.name)
            }
        }
        self.graph = graph
        var reads = Set(graph.outputs)
        var readers: [String: Int] = [:]
        for n in graph.nodes {
            for v in n.inputs { readers[v, default: 0] += 1 }
            switch n.op {
            case .conv2d, .batchNorm, .linear, .mul, .channelAffine, .prelu: reads.formUnion(n.inputs.prefix(2))
            case .relu, .hardtanh, .clamp, .maxPool2d: reads.insert(n.inputs[0])
            case .quantize: reads.insert(n.inputs[0])  // counted: a training pass may hold it (ParallelLSQ does)
            default: break
            }
        }
        backwardReads = reads
        self.readers = readers
    }

    /// The graph's constants as a trainer's initial state.
    package var initialState: [String: [Float]] { graph.constants.mapValues { $0.floats() } }

    /// Runs the graph in training mode on `inputs`, with constant values from `state`.
    /// - Throws: ``TrainError`` naming the node whose shapes do not fit.
    package func forward(
        inputs: [String: Tensor], state: [String: [Float]], profile: TrainProfile? = nil
    ) throws(TrainError) -> Tape {
        // The GEMMs accumulate in double (ConvGradient), so the values that decide ReLU and
        // quantizer boundaries do not depend on OpenBLAS's thread count or blocking.
        var tape = Tape()
        for name in graph.inputs {
            guard let t = inputs[name] else { throw TrainError(.invalidInput("input \"\(name)\" not supplied")) }
            tape.values[name] = t.floats()
            tape.shapes[name] = t.shape
        }
        for (name, t) in graph.constants {
            tape.values[name] = state[name] ?? t.floats()
            tape.shapes[name] = t.shape
        }
        var unread = readers
        for i in order {
            let n = graph.nodes[i]
            let s = n.inputs.map { tape.shapes[$0]! }
            let x = n.inputs.map { tape.values[$0]! }
            defer {
                if lean {
                    for v in n.inputs {
                        unread[v]! -= 1
                        if unread[v] == 0, !backwardReads.contains(v), graph.constants[v] == nil { tape.values[v] = nil }
                    }
                }
            }
            do {
                let outShape = try shapeMemo.outputShape(
                    node: i, n.op, s, activation: graph.constants[n.inputs[0]] == nil)
                let start = profile?.now()
                let y = try evaluate(n, x, s, outShape, &tape)
                if let start { profile!.add(forward: n.op.typeName, since: start) }
                tape.shapes[n.outputs[0]] = outShape
                tape.values[n.outputs[0]] = y
            } catch let e as InferenceError {
                throw TrainError(.engine(e.at(node: n.name)), node: n.name)
            } catch let e as TrainError {
                throw e
            } catch {
                throw TrainError(.unsupported("\(error)"), node: n.name)
            }
        }
        return tape
    }

    private func evaluate(
        _ n: Graph.Node, _ x: [[Float]], _ s: [[Int]], _ out: [Int], _ tape: inout Tape
    ) throws -> [Float] {
        typealias R = ReferenceKernels
        let (batch, channels, inner) = Self.layout(s[0])
        switch n.op {
        case .conv2d(let a):
            let g = try ShapeInference.conv(a, input: s[0], weight: s[1], bias: s.count > 2 ? s[2] : nil)
            if precision == .fast {
                return FastConvGradient.forward(g, x: x[0], w: x[1], b: x.count > 2 ? x[2] : nil, threads: threads)
            }
            return ConvGradient.forward(g, x: x[0], w: x[1], b: x.count > 2 ? x[2] : nil)
        case .batchNorm(let eps):
            let (y, st) =
                precision == .fast
                ? FastBatchNorm.forward(
                    x[0], batch: batch, channels: channels, inner: inner, gamma: x[1], beta: x[2], epsilon: eps,
                    threads: threads)
                : LayerGradients.batchNormForward(
                    x[0], batch: batch, channels: channels, inner: inner, gamma: x[1], beta: x[2], epsilon: eps)
            tape.batchStatistics[n.name] = st
            return y
        case .relu:
            if precision == .fast { return ParallelLayerGradients.clamp(x[0], lo: 0, hi: .infinity, threads: threads) }
            return R.activation(x[0], .relu)
        case .hardtanh(let lo, let hi):
            if precision == .fast { return ParallelLayerGradients.clamp(x[0], lo: lo, hi: hi, threads: threads) }
            return R.activation(x[0], .clamp(lo: lo, hi: hi))
        case .clamp(let lo, let hi):
            if precision == .fast {
                return ParallelLayerGradients.clamp(x[0], lo: lo ?? -.infinity, hi: hi ?? .infinity, threads: threads)
            }
            return R.activation(x[0], .clamp(lo: lo ?? -.infinity, hi: hi ?? .infinity))
        case .maxPool2d(let a): return R.maxPool2d(try ShapeInference.pool(a, input: s[0], isMax: true), input: x[0])
        case .avgPool2d(let a): return R.avgPool2d(try ShapeInference.pool(a, input: s[0], isMax: false), input: x[0])
        case .adaptiveAvgPool2d(let oh, let ow):
            return R.adaptiveAvgPool2d(x[0], planes: batch * channels, height: s[0][2], width: s[0][3], outHeight: oh, outWidth: ow)
        case .linear:
            return LayerGradients.linearForward(
                x: x[0], w: x[1], b: x.count > 2 ? x[2] : nil, batch: s[0][0], inFeatures: s[0][1], outFeatures: s[1][0])
        case .add:
            if precision == .fast { return ParallelCopies.add(x[0], x[1], threads: threads) }
            return R.add(x[0], x[1])
        case .mul: return R.mul(x[0], s[0], x[1], s[1])
        case .channelAffine:
            return R.channelAffine(x[0], batch: batch, channels: channels, inner: inner, scale: x[1], bias: x[2])
        case .prelu: return R.prelu(x[0], batch: batch, channels: channels, inner: inner, slope: x[1])
        case .flatten, .reshape, .identity: return x[0]
        case .pad(let a) where precision == .fast:
            return ParallelCopies.pad(
                x[0], planes: batch * channels, height: s[0][2], width: s[0][3], padding: a.padding, value: a.value,
                threads: threads)
        case .pad(let a):
            return R.pad(x[0], planes: batch * channels, height: s[0][2], width: s[0][3], padding: a.padding, value: a.value)
        case .concat: return R.concat(x, batch: batch, channels: s.map { $0[1] }, spatial: s[0][2] * s[0][3])
        case .quantize(let q):
            let f = q.function as! any TrainableQuantizeFunction
            let pass = try f.forwardTrain(
                x[0], shape: s[0], parameters: f.parameterKeys.map { tape.values[$0]! }, threads: precision == .fast ? threads : 1)
            tape.quantizers[n.name] = pass
            return pass.y
        default: throw TrainError(.unsupported("op \(n.op.typeName)"), node: n.name)
        }
    }

    /// The gradient of every value reached backwards from `outputGradients` (output value ->
    /// gradient), including each constant's; graph inputs get none.
    /// - Throws: ``TrainError`` `.nonFinite` naming the first node whose gradient is not finite.
    package func backward(
        _ tape: Tape, outputGradients: [String: [Float]], profile: TrainProfile? = nil
    ) throws(TrainError) -> [String: [Float]] {
        var copy = tape
        return try backward(releasing: &copy, outputGradients: outputGradients, keepValueGradients: true, profile: profile)
    }

    /// ``backward(_:outputGradients:profile:)`` that lets go of what it no longer needs as it
    /// goes: each node's output value, training pass and output gradient once the node's own
    /// backward has run (every reader of that value ran before it), so activations and their
    /// gradients are not all held to the end. Without `keepValueGradients` the result holds
    /// only the constants' gradients. `tape` is left without those values.
    package func backward(
        releasing tape: inout Tape, outputGradients: [String: [Float]], keepValueGradients: Bool = false,
        profile: TrainProfile? = nil
    ) throws(TrainError) -> [String: [Float]] {
        var grads = outputGradients
        let inputs = Set(graph.inputs)
        func accumulate(_ value: String, _ g: [Float]) {
            if inputs.contains(value) { return }
            if precision == .fast, var old = grads.removeValue(forKey: value) {
                ParallelCopies.addInPlace(&old, g, threads: threads)  // old + g, as below
                grads[value] = old
            } else if let old = grads[value] {
                grads[value] = zip(old, g).map { $0 + $1 }
            } else {
                grads[value] = g
            }
        }
        for i in order.reversed() {
            let n = graph.nodes[i]
            defer {
                if !keepValueGradients {
                    grads[n.outputs[0]] = nil
                    tape.values[n.outputs[0]] = nil
                    tape.quantizers[n.name] = nil
                }
            }
            guard let dy = grads[n.outputs[0]] else { continue }
            if let bad = ParallelCopies.firstNonFinite(dy) {
                throw TrainError(.nonFinite("gradient \(bad) at the output of \(n.name)"), node: n.name)
            }
            let x = n.inputs.map { tape.values[$0] ?? [] }  // a lean tape has only the ``backwardReads``
            let s = n.inputs.map { tape.shapes[$0]! }
            let needsInput = !inputs.contains(n.inputs[0])
            let (batch, channels, inner) = Self.layout(s[0])
            let start = profile?.now()
            let fast = precision == .fast
            do {
                switch n.op {
                case .conv2d(let a):
                    let g = try ShapeInference.conv(a, input: s[0], weight: s[1], bias: s.count > 2 ? s[2] : nil)
                    let r =
                        fast
                        ? FastConvGradient.backward(
                            g, x: x[0], w: x[1], dy: dy, inputGradient: needsInput, biasGradient: n.inputs.count > 2,
                            threads: threads)
                        : ConvGradient.backward(g, x: x[0], w: x[1], dy: dy, inputGradient: needsInput)
                    if let dx = r.dx { accumulate(n.inputs[0], dx) }
                    accumulate(n.inputs[1], r.dw)
                    if n.inputs.count > 2 { accumulate(n.inputs[2], r.db) }
                case .batchNorm(let eps):
                    let r =
                        fast
                        ? FastBatchNorm.backward(
                            x[0], dy: dy, batch: batch, channels: channels, inner: inner, gamma: x[1],
                            statistics: tape.batchStatistics[n.name]!, epsilon: eps, threads: threads)
                        : LayerGradients.batchNormBackward(
                            x[0], dy: dy, batch: batch, channels: channels, inner: inner, gamma: x[1],
                            statistics: tape.batchStatistics[n.name]!, epsilon: eps)
                    accumulate(n.inputs[0], r.dx)
                    accumulate(n.inputs[1], r.dgamma)
                    accumulate(n.inputs[2], r.dbeta)
                case .relu where fast:
                    accumulate(
                        n.inputs[0],
                        ParallelLayerGradients.activationBackward(
                            x[0], dy: dy, lo: 0, hi: .infinity, strict: true, threads: threads))
                case .relu:
                    accumulate(n.inputs[0], LayerGradients.activationBackward(x[0], dy: dy) { $0 > 0 })
                case .hardtanh(let lo, let hi) where fast:
                    accumulate(
                        n.inputs[0],
                        ParallelLayerGradients.activationBackward(
                            x[0], dy: dy, lo: lo, hi: hi, strict: true, threads: threads))
                case .hardtanh(let lo, let hi):
                    accumulate(n.inputs[0], LayerGradients.activationBackward(x[0], dy: dy) { $0 > lo && $0 < hi })
                case .clamp(let lo, let hi) where fast:
                    accumulate(
                        n.inputs[0],
                        ParallelLayerGradients.activationBackward(
                            x[0], dy: dy, lo: lo ?? -.infinity, hi: hi ?? .infinity, strict: false, threads: threads))
                case .clamp(let lo, let hi):
                    accumulate(
                        n.inputs[0],
                        LayerGradients.activationBackward(x[0], dy: dy) {
                            $0 >= (lo ?? -.infinity) && $0 <= (hi ?? .infinity)
                        })
                case .maxPool2d(let a):
                    accumulate(
                        n.inputs[0], LayerGradients.maxPoolBackward(try ShapeInference.pool(a, input: s[0], isMax: true), x: x[0], dy: dy))
                case .avgPool2d(let a):
                    accumulate(n.inputs[0], LayerGradients.avgPoolBackward(try ShapeInference.pool(a, input: s[0], isMax: false), dy: dy))
                case .adaptiveAvgPool2d(let oh, let ow):
                    accumulate(
                        n.inputs[0],
                        LayerGradients.adaptiveAvgPoolBackward(
                            dy: dy, planes: batch * channels, height: s[0][2], width: s[0][3], outHeight: oh, outWidth: ow))
                case .linear:
                    let r = LayerGradients.linearBackward(
                        x: x[0], w: x[1], dy: dy, batch: s[0][0], inFeatures: s[0][1], outFeatures: s[1][0])
                    accumulate(n.inputs[0], r.dx)
                    accumulate(n.inputs[1], r.dw)
                    if n.inputs.count > 2 { accumulate(n.inputs[2], r.db) }
                case .add:
                    accumulate(n.inputs[0], dy)
                    accumulate(n.inputs[1], dy)
                case .mul:
                    let r = AffineGradients.mulBackward(x[0], s[0], x[1], s[1], dy: dy)
                    accumulate(n.inputs[0], r.da)
                    accumulate(n.inputs[1], r.db)
                case .channelAffine:
                    let r = AffineGradients.channelAffineBackward(
                        x[0], dy: dy, batch: batch, channels: channels, inner: inner, scale: x[1])
                    accumulate(n.inputs[0], r.dx)
                    accumulate(n.inputs[1], r.dscale)
                    accumulate(n.inputs[2], r.dbias)
                case .prelu:
                    let r = AffineGradients.preluBackward(
                        x[0], dy: dy, batch: batch, channels: channels, inner: inner, slope: x[1])
                    accumulate(n.inputs[0], r.dx)
                    accumulate(n.inputs[1], r.dslope)
                case .flatten, .reshape, .identity:
                    accumulate(n.inputs[0], dy)
                case .pad(let a) where fast:
                    accumulate(
                        n.inputs[0],
                        ParallelCopies.padBackward(
                            dy: dy, planes: batch * channels, height: s[0][2], width: s[0][3], padding: a.padding, threads: threads))
                case .pad(let a):
                    accumulate(
                        n.inputs[0],
                        LayerGradients.padBackward(
                            dy: dy, planes: batch * channels, height: s[0][2], width: s[0][3], padding: a.padding))
                case .concat:
                    for j in n.inputs.indices {
                        accumulate(
                            n.inputs[j],
                            LayerGradients.concatBackward(
                                dy: dy, batch: batch, channels: s.map { $0[1] }, spatial: s[0][2] * s[0][3], input: j))
                    }
                case .quantize(let q):
                    let f = q.function as! any TrainableQuantizeFunction
                    let r = tape.quantizers[n.name]!.backward(dy)
                    if needsInput { accumulate(n.inputs[0], r.dx) }
                    for (key, g) in zip(f.parameterKeys, r.parameters) { accumulate(key, g) }
                default:
                    throw TrainError(.unsupported("op \(n.op.typeName)"), node: n.name)
                }
            } catch let e as TrainError {
                throw e
            } catch {
                throw TrainError(.unsupported("\(error)"), node: n.name)
            }
            if let start { profile!.add(backward: n.op.typeName, since: start) }
        }
        return grads
    }

    /// `(batch, channels, inner)` of an `[N, C, ...]` shape.
    private static func layout(_ s: [Int]) -> (Int, Int, Int) {
        (s.first ?? 1, s.count >= 2 ? s[1] : 1, s.count >= 3 ? s[2...].reduce(1, *) : 1)
    }
}

/// Output shapes by node index and input shapes (``TrainingGraph``'s forward asks per step).
///
/// Shape inference checks a quantize op by a dry run of its function on the input shape (up to
/// 4M elements): 9% of an LSQ training step when it ran every step, and the training loop
/// builds a new graph, with a new memo, every step. A quantize op on activations is checked
/// on one image of the batch instead (what an activation quantizer's parameters depend on are
/// the channels); its training pass then runs on the whole batch.
private final class ShapeMemo: Sendable {
    private let known = Mutex<[Int: (inputs: [[Int]], output: [Int])]>([:])

    func outputShape(node: Int, _ op: Op, _ inputs: [[Int]], activation: Bool) throws(InferenceError) -> [Int] {
        if let k = known.withLock({ $0[node] }), k.inputs == inputs { return k.output }
        var output: [Int]
        if case .quantize = op, activation, let n = inputs[0].first, n > 1 {
            output = try ShapeInference.outputShape(op, [[1] + inputs[0].dropFirst()] + inputs.dropFirst())
            output[0] = n
        } else {
            output = try ShapeInference.outputShape(op, inputs)
        }
        known.withLock { $0[node] = (inputs, output) }
        return output
    }
}
