import Tensors
import TestSupport
import Testing

@testable import Formats

/// The same object pickled by CPython 3 with protocols 0-5 (bytes from `pickle.dumps`):
/// `{'a': [1, 2.5, 'x', None, True, False, -7, 300, 70000, -2**40, 2**70], 'b': (1,),
///   'c': {1, 2}, 'd': b'\x00\xff', 'e': (), 'f': (1, 2, 3, 4)}`.
@Suite struct UnpicklerTests {
    static let pythonPickles: [(Int, String)] = [
        (
            0,
            "286470300a56610a70310a286c70320a49310a6146322e350a6156780a70330a614e614930310a614930300a61492d370a61493330300a614937303030300a614c2d313039393531313632373737364c0a614c313138303539313632303731373431313330333432344c0a617356620a70340a2849310a7470350a7356630a70360a635f5f6275696c74696e5f5f0a7365740a70370a28286c70380a49310a6149320a617470390a527031300a7356640a7031310a635f636f646563730a656e636f64650a7031320a28565c7530303030ff0a7031330a566c6174696e310a7031340a747031350a527031360a7356650a7031370a28747356660a7031380a2849310a49320a49330a49340a747031390a732e"
        ),
        (
            1,
            "7d71002858010000006171015d7102284b0147400400000000000058010000007871034e4930310a4930300a4af9ffffff4d2c014a701101004c2d313039393531313632373737364c0a4c313138303539313632303731373431313330333432344c0a655801000000627104284b017471055801000000637106635f5f6275696c74696e5f5f0a7365740a7107285d7108284b014b026574710952710a580100000064710b635f636f646563730a656e636f64650a710c28580300000000c3bf710d58060000006c6174696e31710e74710f5271105801000000657111295801000000667112284b014b024b034b04747113752e"
        ),
        (
            2,
            "80027d71002858010000006171015d7102284b0147400400000000000058010000007871034e88894af9ffffff4d2c014a701101008a060000000000ff8a090000000000000000406558010000006271044b018571055801000000637106635f5f6275696c74696e5f5f0a7365740a71075d7108284b014b026585710952710a580100000064710b635f636f646563730a656e636f64650a710c580300000000c3bf710d58060000006c6174696e31710e86710f5271105801000000657111295801000000667112284b014b024b034b04747113752e"
        ),
        (
            3,
            "80037d71002858010000006171015d7102284b0147400400000000000058010000007871034e88894af9ffffff4d2c014a701101008a060000000000ff8a090000000000000000406558010000006271044b018571055801000000637106636275696c74696e730a7365740a71075d7108284b014b026585710952710a580100000064710b430200ff710c580100000065710d29580100000066710e284b014b024b034b0474710f752e"
        ),
        (
            4,
            "80049570000000000000007d94288c0161945d94284b014740040000000000008c0178944e88894af9ffffff4d2c014a701101008a060000000000ff8a09000000000000000040658c0162944b0185948c0163948f94284b014b02908c016494430200ff948c016594298c016694284b014b024b034b047494752e"
        ),
        (
            5,
            "80059570000000000000007d94288c0161945d94284b014740040000000000008c0178944e88894af9ffffff4d2c014a701101008a060000000000ff8a09000000000000000040658c0162944b0185948c0163948f94284b014b02908c016494430200ff948c016594298c016694284b014b024b034b047494752e"
        ),
    ]

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }

    static func unpickle(_ b: [UInt8]) throws(FormatError) -> (CheckpointValue, Unpickler) {
        var u = Unpickler(ByteSlice(b))
        let v = try u.load()
        return (v, u)
    }

    static func ints(_ v: CheckpointValue?) -> [Int64]? {
        guard let v else { return nil }
        switch v {
        case .tuple(let a), .list(let a), .set(let a):
            return a.compactMap { if case .int(let i) = $0 { return i } else { return nil } }
        default: return nil
        }
    }

    @Test(arguments: pythonPickles) func readsEveryProtocol(_ proto: Int, _ hex: String) throws {
        let (v, u) = try Self.unpickle(Self.bytes(hex))
        #expect(u.proto == (proto >= 2 ? proto : nil))
        let d = try #require(v.dict)
        #expect(d.entries.map { CheckpointValue.keyText($0.key) } == ["a", "b", "c", "d", "e", "f"])
        guard case .list(let a)? = d["a"], a.count == 11 else { Issue.record("a"); return }
        guard case .int(1) = a[0], case .float(2.5) = a[1], case .string("x") = a[2], case .none = a[3],
            case .bool(true) = a[4], case .bool(false) = a[5], case .int(-7) = a[6], case .int(300) = a[7],
            case .int(70000) = a[8], case .int(-1_099_511_627_776) = a[9], case .bigInt(let big) = a[10]
        else { Issue.record("a items: \(a.map(\.typeName))"); return }
        #expect(big == [0, 0, 0, 0, 0, 0, 0, 0, 0x40])
        #expect(Self.ints(d["b"]) == [1])
        #expect(Set(Self.ints(d["c"]) ?? []) == [1, 2])
        guard case .bytes(let b)? = d["d"] else { Issue.record("d: \(d["d"]?.typeName ?? "-")"); return }
        #expect(b == [0, 0xff])
        guard case .tuple(let e)? = d["e"] else { Issue.record("e"); return }
        #expect(e.isEmpty)
        #expect(Self.ints(d["f"]) == [1, 2, 3, 4])
        // protocols 0-1 use text / non-weights_only opcodes; 3+ use SHORT_BINBYTES etc.
        if proto == 2 { #expect(u.rejectedOpcodes.isEmpty) } else { #expect(!u.rejectedOpcodes.isEmpty) }
        #expect(u.globals.allSatisfy { $0 == "builtins.set" || $0 == "_codecs.encode" })
    }

    @Test func memoSharesMutableContainers() throws {
        // d = {}; l = []; d['x'] = l; d['y'] = l; then l.append(5) through the memo:
        // EMPTY_DICT BINPUT1 EMPTY_LIST BINPUT0 POP MARK 'x' BINGET0 'y' BINGET0 SETITEMS
        // BINGET0 5 APPEND POP STOP. Both keys must see the appended 5 (Python identity).
        let q: [UInt8] = [
            0x80, 2, 0x7d, 0x71, 1, 0x5d, 0x71, 0, 0x30, 0x28, 0x58, 1, 0, 0, 0, 0x78, 0x68, 0, 0x58, 1, 0, 0, 0,
            0x79, 0x68, 0, 0x75, 0x68, 0, 0x4b, 5, 0x61, 0x30, 0x2e,
        ]
        let (v, _) = try Self.unpickle(q)
        let d = try #require(v.dict)
        #expect(Self.ints(d["x"]) == [5])
        #expect(Self.ints(d["y"]) == [5])
    }

    @Test func unknownOpcodeNamesOffset() throws {
        let e = try #require(throws: FormatError.self) { try Self.unpickle([0x80, 2, 0x4e, 0xff, 0x2e]) }
        #expect(e.reason == .unsupportedOpcode(0xff))
        #expect(e.offset == 3)
    }

    @Test func truncatedLengthIsCheckedBeforeAllocating() throws {
        // BINUNICODE declaring 4 GiB - 1 bytes, 1 available.
        let e = try #require(throws: FormatError.self) { try Self.unpickle([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff, 0x61]) }
        guard case .truncated(let needed, let available) = e.reason else { Issue.record("\(e)"); return }
        #expect(needed == 0xffff_ffff && available == 1)
        #expect(e.offset == 7)
        // BINBYTES8 declaring 2^63.
        let f = try #require(throws: FormatError.self) {
            try Self.unpickle([0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2e])
        }
        guard case .truncated = f.reason else { Issue.record("\(f)"); return }
    }

    @Test func stackUnderflowAndMemoMiss() throws {
        let a = try #require(throws: FormatError.self) { try Self.unpickle([0x80, 2, 0x61, 0x2e]) }
        #expect(a.description.contains("underflow"))
        #expect(a.offset == 2)
        let b = try #require(throws: FormatError.self) { try Self.unpickle([0x80, 2, 0x68, 5, 0x2e]) }
        #expect(b.description.contains("memo key 5"))
        let c = try #require(throws: FormatError.self) { try Self.unpickle([0x80, 2, 0x6a, 0xff, 0xff, 0xff, 0x7f, 0x2e]) }
        #expect(c.description.contains("memo key 2147483647"))
        let d = try #require(throws: FormatError.self) { try Self.unpickle([0x80, 2, 0x4e, 0x30, 0x30, 0x2e]) }
        #expect(d.description.contains("underflow"))
    }

    @Test func deepNestingIsRejectedNotCrashing() throws {
        // 100 000 nested lists: EMPTY_LIST x n, then APPEND x (n-1).
        let n = 100_000
        let p = [0x80, 2] + [UInt8](repeating: 0x5d, count: n) + [UInt8](repeating: 0x61, count: n - 1) + [0x2e]
        let e = try #require(throws: FormatError.self) { try Self.unpickle(p) }
        guard case .tooLarge(let what, _, _) = e.reason else { Issue.record("\(e)"); return }
        #expect(what.contains("depth"))
    }

    @Test func memoDoublingIsBounded() throws {
        // t0 = (); t_{i+1} = (t_i, t_i) via memo: 2^60 logical values in a few hundred bytes.
        var p: [UInt8] = [0x80, 2, 0x29, 0x71, 0]
        for i in 0..<60 {
            p += [0x30, 0x68, UInt8(i), 0x68, UInt8(i), 0x86, 0x71, UInt8(i + 1)]
        }
        p += [0x2e]
        // Stack holds one value: the first BINPUT leaves () on the stack, each POP removes the previous.
        let e = try #require(throws: FormatError.self) { try Self.unpickle(p) }
        guard case .tooLarge = e.reason else { Issue.record("\(e)"); return }
    }

    @Test func unknownGlobalsBecomePlaceholders() throws {
        // GLOBAL 'os system' ('ls',) REDUCE, then BUILD with a dict.
        var p: [UInt8] = [0x80, 2, 0x63] + Array("os\nsystem\n".utf8)
        p += [0x58, 2, 0, 0, 0] + Array("ls".utf8) + [0x85, 0x52, 0x7d, 0x62, 0x2e]
        let (v, u) = try Self.unpickle(p)
        guard case .object(let o) = v else { Issue.record("\(v.typeName)"); return }
        #expect(o.global == "os.system")
        guard case .string("ls")? = o.args.first else { Issue.record("args"); return }
        #expect(o.state != nil)
        #expect(u.unsafeGlobals == ["os.system"])
    }

    @Test func builtinIsMappedAndProtocolsRecorded() throws {
        let p: [UInt8] = [0x80, 2, 0x63] + Array("__builtin__\nset\n".utf8) + [0x5d, 0x85, 0x52, 0x2e]
        let (v, u) = try Self.unpickle(p)
        guard case .set(let s) = v else { Issue.record("\(v.typeName)"); return }
        #expect(s.isEmpty)
        #expect(u.globals == ["builtins.set"])
        #expect(u.unsafeGlobals.isEmpty)
    }
}
