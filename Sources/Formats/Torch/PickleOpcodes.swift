/// Pickle opcodes (protocols 0-5), with the names `pickletools` uses.
///
/// The reader never executes anything: GLOBAL/STACK_GLOBAL push a name, REDUCE/NEWOBJ/BUILD
/// either rebuild a value qtools models (tensors, OrderedDict, ...) or make an ``Opaque``
/// placeholder.
enum PickleOpcode {
    static let mark: UInt8 = 0x28, stop: UInt8 = 0x2e, pop: UInt8 = 0x30, popMark: UInt8 = 0x31
    static let dup: UInt8 = 0x32, float: UInt8 = 0x46, int: UInt8 = 0x49, binint: UInt8 = 0x4a
    static let binint1: UInt8 = 0x4b, long: UInt8 = 0x4c, binint2: UInt8 = 0x4d, none: UInt8 = 0x4e
    static let persid: UInt8 = 0x50, binpersid: UInt8 = 0x51, reduce: UInt8 = 0x52
    static let string: UInt8 = 0x53, binstring: UInt8 = 0x54, shortBinstring: UInt8 = 0x55
    static let unicode: UInt8 = 0x56, binunicode: UInt8 = 0x58, append: UInt8 = 0x61
    static let build: UInt8 = 0x62, global: UInt8 = 0x63, dict: UInt8 = 0x64, emptyDict: UInt8 = 0x7d
    static let appends: UInt8 = 0x65, get: UInt8 = 0x67, binget: UInt8 = 0x68, inst: UInt8 = 0x69
    static let longBinget: UInt8 = 0x6a, list: UInt8 = 0x6c, emptyList: UInt8 = 0x5d, obj: UInt8 = 0x6f
    static let put: UInt8 = 0x70, binput: UInt8 = 0x71, longBinput: UInt8 = 0x72, setitem: UInt8 = 0x73
    static let tuple: UInt8 = 0x74, emptyTuple: UInt8 = 0x29, setitems: UInt8 = 0x75, binfloat: UInt8 = 0x47
    static let proto: UInt8 = 0x80, newobj: UInt8 = 0x81, tuple1: UInt8 = 0x85, tuple2: UInt8 = 0x86
    static let tuple3: UInt8 = 0x87, newtrue: UInt8 = 0x88, newfalse: UInt8 = 0x89, long1: UInt8 = 0x8a
    static let long4: UInt8 = 0x8b, binbytes: UInt8 = 0x42, shortBinbytes: UInt8 = 0x43
    static let shortBinunicode: UInt8 = 0x8c, binunicode8: UInt8 = 0x8d, binbytes8: UInt8 = 0x8e
    static let emptySet: UInt8 = 0x8f, additems: UInt8 = 0x90, frozenset: UInt8 = 0x91
    static let newobjEx: UInt8 = 0x92, stackGlobal: UInt8 = 0x93, memoize: UInt8 = 0x94
    static let frame: UInt8 = 0x95, bytearray8: UInt8 = 0x96

    /// `pickletools` name of an opcode byte (nil when unknown).
    static func name(_ op: UInt8) -> String? { names[op] }

    static let names: [UInt8: String] = [
        0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT",
        0x49: "INT", 0x4a: "BININT", 0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE",
        0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING",
        0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD",
        0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET",
        0x68: "BINGET", 0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST",
        0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x73: "SETITEM",
        0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT", 0x80: "PROTO",
        0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
        0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4",
        0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8",
        0x8e: "BINBYTES8", 0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX",
        0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME", 0x96: "BYTEARRAY8",
        0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]
}
