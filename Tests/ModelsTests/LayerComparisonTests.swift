import Testing

@testable import Engine
@testable import Models

/// Per-layer comparison and the quantizer-boundary probe on hand-made layers: the issue-18
/// situation in miniature (a conv output one ulp apart, a quantizer that flips a level on it).
@Suite struct LayerComparisonTests {
    /// 2-bit uniform quantizer on [0, 1]: levels 0, 1/3, 2/3, 1; boundaries at 1/6, 1/2, 5/6.
    struct Round3: QuantizeFunction, Equatable {
        var name = "q"
        var method = "test"
        var levels = 4
        func apply(_ x: [Float], shape: [Int]) throws -> [Float] {
            x.map { ($0.clamped(0, 1) * 3).rounded() / 3 }
        }
    }

    /// The largest float32 below the 1/2 boundary of ``Round3`` (level 1/3) and the smallest above (2/3).
    static func straddle() -> (below: Float, above: Float) {
        let f = Round3()
        var x: Float = 0.5
        while (try! f.apply([x], shape: [1]))[0] != Float(1) / 3 { x = x.nextDown }
        var y = x.nextUp
        while (try! f.apply([y], shape: [1]))[0] == Float(1) / 3 { y = y.nextUp }
        return (x, y)
    }

    static func layer(_ name: String, _ op: String, _ v: [Float], inputs: [String] = [], q: (any QuantizeFunction)? = nil) -> LayerValue {
        LayerValue(name: name, op: op, inputs: inputs, shape: [1, 1, 1, v.count], quantizer: q, source: name) {
            ([1, 1, 1, v.count], v)
        }
    }

    @Test func boundaryIsBetweenTwoAdjacentFloats() throws {
        let (below, above) = Self.straddle()
        var x = [Float](repeating: 0.2, count: 8)
        x[5] = below
        let b = try #require(try QuantizerBoundary.locate(Round3(), input: x, shape: [1, 1, 1, 8], index: 5, other: above.nextUp.nextUp))
        #expect(b.lastOnASide == below)
        #expect(b.firstOnBSide == above)
        #expect(FloatOrder.ulps(b.lastOnASide, b.firstOnBSide) == 1)
        #expect(b.ulpsA == 1 && b.ulpsB == 3)
        // Both inputs on one level: no boundary between them.
        #expect(try QuantizerBoundary.locate(Round3(), input: x, shape: [1, 1, 1, 8], index: 5, other: 0.3) == nil)
    }

    @Test func floatOrderRoundTrips() {
        for f: Float in [0, 1, -1, 0.5, -3.25e-7, .greatestFiniteMagnitude, -.leastNonzeroMagnitude] {
            #expect(FloatOrder.float(FloatOrder.key(f)) == f)
            #expect(FloatOrder.key(f.nextUp) == FloatOrder.key(f) + 1 || f == .greatestFiniteMagnitude)
        }
        #expect(FloatOrder.ulps(-Float.leastNonzeroMagnitude, .leastNonzeroMagnitude) == 2)
    }

    @Test func locatesTheFlippedQuantizerElement() throws {
        let (below, above) = Self.straddle()
        var conv = [Float](repeating: 0.2, count: 8)
        var convB = conv
        conv[5] = below
        convB[5] = above
        let q = try Round3().apply(conv, shape: [1, 1, 1, 8]), qB = try Round3().apply(convB, shape: [1, 1, 1, 8])
        let a = [
            Self.layer("x", "input", [1, 2]), Self.layer("conv", "conv2d", conv),
            Self.layer("q", "quantize", q, inputs: ["conv"], q: Round3()),
            Self.layer("fc", "linear", [q.reduce(0, +)]),
        ]
        let b = [
            Self.layer("x", "input", [1, 2]), Self.layer("conv", "conv2d", convB),
            Self.layer("q", "quantize", qB, inputs: ["conv"], q: Round3()),
            Self.layer("fc", "linear", [qB.reduce(0, +)]),
        ]
        let c = try LayerComparison(a, b, tolerance: 1e-4)
        #expect(!c.pass)
        #expect(c.rows.map(\.status) == ["ok", "ok", "differs", "differs"])
        let e = try #require(c.first)
        #expect(e.layer == "q" && e.op == "quantize")
        #expect(e.index == 5 && e.position == [0, 0, 0, 5] && e.count == 1)
        #expect(e.a == Float(1) / 3 && e.b == Float(2) / 3)
        let input = try #require(e.input)
        #expect(input.name == "conv" && input.a == below && input.b == above && input.ulps == 1)
        let bd = try #require(e.boundary)
        #expect(bd.lastOnASide == below && bd.firstOnBSide == above)
        #expect(e.note.contains("ill-conditioned"), "\(e.note)")
        // Identical runs: every layer exactly equal.
        let same = try LayerComparison(a, a, tolerance: 0)
        #expect(same.pass && same.rows.allSatisfy { $0.maxAbs == 0 })
    }

    @Test func sameInputDifferentLevelsBlamesTheQuantizer() throws {
        let x: [Float] = [0.1, 0.4]
        let a = [Self.layer("conv", "conv2d", x), Self.layer("q", "quantize", [0, 1.0 / 3], inputs: ["conv"])]
        let b = [Self.layer("conv", "conv2d", x), Self.layer("q", "quantize", [0, 2.0 / 3], inputs: ["conv"])]
        let e = try #require(try LayerComparison(a, b, tolerance: 1e-4).first)
        #expect(e.index == 1 && e.input?.ulps == 0 && e.boundary == nil)
        #expect(e.note.contains("the quantizers differ"))
    }

    @Test func shapeMismatchNamesTheLayer() throws {
        let a = [LayerValue(name: "conv", source: "a/conv.npy") { ([1, 2], [0, 0]) }]
        let b = [LayerValue(name: "conv", source: "b/conv.npy") { ([2, 1], [0, 0]) }]
        #expect {
            _ = try LayerComparison(a, b, tolerance: 1e-4)
        } throws: { e in
            "\(e)".contains("conv") && "\(e)".contains("a/conv.npy") && "\(e)".contains("b/conv.npy")
        }
    }
}

extension Float {
    fileprivate func clamped(_ lo: Float, _ hi: Float) -> Float { Swift.min(Swift.max(self, lo), hi) }
}
