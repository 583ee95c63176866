import Tensors

/// A pickle reader that never executes anything (protocols 0-5).
///
/// It is a plain stack machine over the opcodes of formats.md Appendix 1 "Reader (must)":
/// iterative, so deep nesting cannot overflow the call stack, and every declared length is
/// checked against the bytes remaining before anything is allocated. Memo indices are keys
/// of a dictionary, never sizes of an array. Globals are recorded (with `__builtin__` mapped
/// to `builtins`) and compared with torch's `weights_only` allowlist; REDUCE/NEWOBJ/BUILD on
/// torch's rebuild functions produce ``StoredTensor``s (see `TorchGlobals.swift`), and anything
/// else becomes an ``Opaque`` placeholder.
struct Unpickler {
    /// Resolves a persistent id (the popped pid value) to a stack value (usually a storage).
    typealias PersistentLoad = (_ pid: PickleValue, _ unpickler: Unpickler) throws(FormatError) -> PickleValue

    /// Safety limits.
    struct Limits {
        /// Deepest container nesting accepted in the result.
        var maxDepth = 256
        /// Largest logical size (values, counting shared ones each time) of the result.
        var maxValues = 1 << 26
        /// Longest decimal integer in text opcodes (Python's default `int_max_str_digits`).
        var maxDecimalDigits = 4300
    }

    var reader: ByteReader
    var limits = Limits()
    let persistentLoad: PersistentLoad?

    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    var nodes: [PickleNode] = []

    /// Highest PROTO seen (nil: protocol 0 or 1 stream without PROTO).
    private(set) var proto: Int? = nil
    /// Globals in first-use order, `module.name`.
    private(set) var globals: [String] = []
    private var globalSet: Set<String> = []
    /// Names of opcodes used that `weights_only=True` rejects, first-use order.
    private(set) var rejectedOpcodes: [String] = []
    private var rejectedSet: Set<UInt8> = []
    /// Offset of the opcode being executed (for errors).
    var opOffset = 0
    /// Byte-swapped copies of big-endian storages, by key and element width.
    var swapped: [String: ByteSlice] = [:]
    /// Rebuild NumPy arrays as tensors (``PickleReader``; torch checkpoints keep them opaque).
    var decodesNumPy = false

    /// Reads from `bytes`; errors report `base + offset`.
    init(_ bytes: ByteSlice, base: Int = 0, persistentLoad: PersistentLoad? = nil) {
        reader = ByteReader(bytes, base: base)
        self.persistentLoad = persistentLoad
    }

    /// Offset just after the STOP that ended the last ``load()`` (relative to `bytes`).
    var endOffset: Int { reader.offset }

    /// An error at the current opcode.
    func fail(_ reason: FormatError.Reason) -> FormatError {
        FormatError(reason, offset: reader.base + opOffset)
    }

    // MARK: stack helpers

    mutating func push(_ v: PickleValue) { stack.append(v) }
    mutating func push(_ v: CheckpointValue) { stack.append(.value(v)) }

    mutating func pop() throws(FormatError) -> PickleValue {
        guard let v = stack.popLast() else { throw fail(.invalid("pickle stack underflow")) }
        if let m = marks.last, m > stack.count {
            throw fail(.invalid("pickle stack underflow (popped past MARK)"))
        }
        return v
    }

    func top() throws(FormatError) -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else {
            throw fail(.invalid("pickle stack underflow"))
        }
        return v
    }

    /// Items above the last MARK, removing them and the mark.
    mutating func popMark() throws(FormatError) -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail(.invalid("pickle MARK expected but not found")) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func newNode(_ n: PickleNode) -> PickleValue {
        nodes.append(n)
        return .node(nodes.count - 1)
    }

    /// The items of a tuple or list value.
    func sequence(_ v: PickleValue) -> [PickleValue]? {
        guard case .node(let i) = v else { return nil }
        switch nodes[i].kind {
        case .tuple, .list: return nodes[i].items
        default: return nil
        }
    }

    mutating func noteGlobal(_ module: String, _ name: String) -> String {
        let m = module == "__builtin__" ? "builtins" : module
        let full = m + "." + name
        if globalSet.insert(full).inserted { globals.append(full) }
        return full
    }

    /// Globals `torch.load(weights_only=True)` refuses.
    var unsafeGlobals: [String] { globals.filter { !WeightsOnlyAllowlist.allows($0) } }

    // MARK: main loop

    /// Runs until STOP and returns the result converted to a ``CheckpointValue``.
    mutating func load() throws(FormatError) -> CheckpointValue {
        let v = try run()
        return try convert(v)
    }

    /// Runs until STOP and returns the raw stack value.
    mutating func run() throws(FormatError) -> PickleValue {
        stack.removeAll()
        marks.removeAll()
        memo.removeAll()
        while true {
            opOffset = reader.offset
            let op = try reader.u8()
            if !WeightsOnlyAllowlist.opcodes.contains(op), rejectedSet.insert(op).inserted {
                rejectedOpcodes.append(PickleOpcode.name(op) ?? "0x" + String(op, radix: 16))
            }
            if op == PickleOpcode.stop {
                guard marks.isEmpty, stack.count == 1, let v = stack.last else {
                    throw fail(.invalid("pickle STOP with \(stack.count) values on the stack (expected 1)"))
                }
                stack.removeAll()
                return v
            }
            try step(op)
        }
    }

    /// Executes one opcode (everything but STOP).
    mutating func step(_ op: UInt8) throws(FormatError) {
        typealias O = PickleOpcode
        switch op {
        case O.proto:
            let p = Int(try reader.u8())
            guard p <= 5 else { throw fail(.unsupportedVersion(found: p, newestSupported: 5)) }
            proto = max(proto ?? 0, p)
        case O.frame: _ = try reader.u64()  // frames are only a buffering hint
        case O.mark: marks.append(stack.count)
        case O.pop:
            if let m = marks.last, m == stack.count { _ = marks.popLast() } else { _ = try pop() }
        case O.popMark: _ = try popMark()
        case O.dup: push(try top())
        case O.none: push(CheckpointValue.none)
        case O.newtrue: push(.bool(true))
        case O.newfalse: push(.bool(false))
        case O.binint: push(.int(Int64(try reader.i32())))
        case O.binint1: push(.int(Int64(try reader.u8())))
        case O.binint2: push(.int(Int64(try reader.u16())))
        case O.long1: push(try longValue(Int(try reader.u8())))
        case O.long4:
            let n = Int(try reader.i32())
            guard n >= 0 else { throw fail(.invalid("LONG4 with negative length \(n)")) }
            push(try longValue(n))
        case O.binfloat:
            push(.float(Double(bitPattern: UInt64(bigEndian: try reader.u64().littleEndian))))
        case O.int, O.long, O.float, O.string, O.unicode, O.persid, O.get, O.put, O.inst:
            try textOpcode(op)
        case O.binunicode: push(.string(try utf8(Int(try reader.u32()))))
        case O.shortBinunicode: push(.string(try utf8(Int(try reader.u8()))))
        case O.binunicode8: push(.string(try utf8(try length64())))
        case O.shortBinstring: push(try pyString(Int(try reader.u8())))
        case O.binstring:
            let n = Int(try reader.i32())
            guard n >= 0 else { throw fail(.invalid("BINSTRING with negative length \(n)")) }
            push(try pyString(n))
        case O.shortBinbytes: push(.bytes(try reader.bytes(Int(try reader.u8()))))
        case O.binbytes: push(.bytes(try reader.bytes(Int(try reader.u32()))))
        case O.binbytes8, O.bytearray8: push(.bytes(try reader.bytes(try length64())))
        case O.emptyTuple: push(newNode(PickleNode(.tuple)))
        case O.tuple: push(newNode(PickleNode(.tuple, items: try popMark())))
        case O.tuple1, O.tuple2, O.tuple3:
            let n = Int(op - O.tuple1) + 1
            guard stack.count - (marks.last ?? 0) >= n else { throw fail(.invalid("pickle stack underflow")) }
            let items = Array(stack.suffix(n))
            stack.removeLast(n)
            push(newNode(PickleNode(.tuple, items: items)))
        case O.emptyList: push(newNode(PickleNode(.list)))
        case O.list: push(newNode(PickleNode(.list, items: try popMark())))
        case O.emptyDict: push(newNode(PickleNode(.dict(.dict))))
        case O.dict:
            let items = try popMark()
            guard items.count % 2 == 0 else { throw fail(.invalid("DICT with an odd number of items")) }
            var n = PickleNode(.dict(.dict))
            for i in stride(from: 0, to: items.count, by: 2) { n.setItem(items[i], items[i + 1]) }
            push(newNode(n))
        case O.emptySet: push(newNode(PickleNode(.set)))
        case O.frozenset: push(newNode(PickleNode(.frozenset, items: try popMark())))
        case O.append:
            let v = try pop()
            try append([v], to: try top())
        case O.appends:
            let items = try popMark()
            try append(items, to: try top())
        case O.additems:
            let items = try popMark()
            try append(items, to: try top())
        case O.setitem:
            let v = try pop()
            let k = try pop()
            try setItems([k, v], on: try top())
        case O.setitems:
            let items = try popMark()
            guard items.count % 2 == 0 else { throw fail(.invalid("SETITEMS with an odd number of items")) }
            try setItems(items, on: try top())
        case O.binput: try memoPut(Int(try reader.u8()))
        case O.longBinput: try memoPut(Int(try reader.u32()))
        case O.memoize: try memoPut(memo.count)
        case O.binget: try memoGet(Int(try reader.u8()))
        case O.longBinget: try memoGet(Int(try reader.u32()))
        case O.global:
            let module = try asciiLine()
            let name = try asciiLine()
            push(.global(noteGlobal(module, name)))
        case O.stackGlobal:
            let name = try pop()
            let module = try pop()
            guard case .value(.string(let n)) = name, case .value(.string(let m)) = module else {
                throw fail(.invalid("STACK_GLOBAL needs two strings"))
            }
            push(.global(noteGlobal(m, n)))
        case O.binpersid:
            let pid = try pop()
            push(try loadPersistent(pid))
        case O.reduce:
            let args = try pop()
            let callable = try pop()
            push(try reduce(callable, args))
        case O.newobj:
            let args = try pop()
            let cls = try pop()
            push(try newObject(cls, args, kwargs: nil))
        case O.newobjEx:
            let kwargs = try pop()
            let args = try pop()
            let cls = try pop()
            push(try newObject(cls, args, kwargs: kwargs))
        case O.obj:
            let items = try popMark()
            guard let cls = items.first else { throw fail(.invalid("OBJ without a class")) }
            push(try newObject(cls, newNode(PickleNode(.tuple, items: Array(items.dropFirst()))), kwargs: nil))
        case O.build:
            let state = try pop()
            try build(state)
        default:
            throw fail(.unsupportedOpcode(op))
        }
    }

    mutating func loadPersistent(_ pid: PickleValue) throws(FormatError) -> PickleValue {
        guard let persistentLoad else {
            throw fail(.unsupported("persistent id in a pickle that cannot reference storages"))
        }
        do {
            return try persistentLoad(pid, self)
        } catch var e {
            if e.offset == nil { e.offset = reader.base + opOffset }
            throw e
        }
    }

    mutating func memoPut(_ index: Int) throws(FormatError) {
        memo[index] = try top()
    }

    mutating func memoGet(_ index: Int) throws(FormatError) {
        guard let v = memo[index] else { throw fail(.invalid("pickle memo key \(index) is not defined")) }
        push(v)
    }

    mutating func append(_ items: [PickleValue], to target: PickleValue) throws(FormatError) {
        guard case .node(let i) = target else {
            throw fail(.invalid("APPEND/ADDITEMS onto a value that is not a list, set or object"))
        }
        switch nodes[i].kind {
        case .list, .set, .frozenset, .object: nodes[i].items.append(contentsOf: items)
        case .tuple, .dict: throw fail(.invalid("APPEND/ADDITEMS onto a tuple or dict"))
        }
    }

    mutating func setItems(_ items: [PickleValue], on target: PickleValue) throws(FormatError) {
        guard case .node(let i) = target else {
            throw fail(.invalid("SETITEM onto a value that is not a dict or object"))
        }
        switch nodes[i].kind {
        case .dict, .object:
            for k in stride(from: 0, to: items.count, by: 2) { nodes[i].setItem(items[k], items[k + 1]) }
        default: throw fail(.invalid("SETITEM onto a list, tuple or set"))
        }
    }

    // MARK: binary scalars

    mutating func length64() throws(FormatError) -> Int {
        let n = try reader.u64()
        guard n <= UInt64(reader.remaining) else {
            throw fail(.truncated(needed: n > UInt64(Int.max) ? Int.max : Int(n), available: reader.remaining))
        }
        return Int(n)
    }

    mutating func utf8(_ n: Int) throws(FormatError) -> String {
        let s = try reader.slice(n)
        return unsafe s.withUnsafeBytes { unsafe String(decoding: $0, as: UTF8.self) }
    }

    /// A Python-2 `str`: decoded as UTF-8 (torch's `encoding='utf-8'`), else kept as bytes.
    mutating func pyString(_ n: Int) throws(FormatError) -> CheckpointValue {
        let b = try reader.bytes(n)
        if let s = String(validating: b, as: UTF8.self) { return .string(s) }
        return .bytes(b)
    }

    /// Two's-complement little-endian integer of `n` bytes (LONG1 / LONG4).
    mutating func longValue(_ n: Int) throws(FormatError) -> CheckpointValue {
        let b = try reader.bytes(n)
        return Self.integer(fromLE: b)
    }

    /// An `.int` when the value fits 64 bits, else `.bigInt` with minimal bytes.
    static func integer(fromLE bytes: [UInt8]) -> CheckpointValue {
        if bytes.isEmpty { return .int(0) }
        let negative = bytes[bytes.count - 1] & 0x80 != 0
        var b = bytes
        let fill: UInt8 = negative ? 0xff : 0
        while b.count > 1, b[b.count - 1] == fill, (b[b.count - 2] & 0x80 != 0) == negative { b.removeLast() }
        if b.count <= 8 {
            var v: UInt64 = negative ? ~0 : 0
            for (k, byte) in b.enumerated() {
                v &= ~(UInt64(0xff) << (8 * UInt64(k)))
                v |= UInt64(byte) << (8 * UInt64(k))
            }
            return .int(Int64(bitPattern: v))
        }
        return .bigInt(b)
    }
}
