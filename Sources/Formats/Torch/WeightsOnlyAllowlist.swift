/// What `torch.load(weights_only=True)` accepts (torch 2.x default allowlist, formats.md §A.2.4).
///
/// qtools never executes a pickle, so this list only decides what is *reported* as unsafe
/// (a file whose globals are all listed here loads in torch with `weights_only=True`) and
/// what the writer is allowed to emit.
public enum WeightsOnlyAllowlist {
    /// `module.name` of every global the default weights_only unpickler allows.
    public static let globals: Set<String> = {
        var s: Set<String> = [
            "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
            "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device",
            "_codecs.encode", "builtins.bytearray", "builtins.set", "builtins.complex",
            "torch.storage.TypedStorage", "torch.storage.UntypedStorage",
            "torch.per_tensor_affine", "torch.per_tensor_symmetric", "torch.per_channel_affine",
            "torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
            "torch._tensor._rebuild_from_type_v2",
        ]
        for f in [
            "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
            "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
            "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
            "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
        ] { s.insert("torch._utils." + f) }
        for d in dtypeNames { s.insert("torch." + d) }
        let tensorKinds = ["Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"]
        for t in tensorKinds {
            for prefix in ["torch.", "torch.cuda.", "torch.sparse.", "torch.cuda.sparse."] {
                s.insert(prefix + t + "Tensor")
            }
        }
        let plainStorages = tensorKinds + ["ComplexFloat", "ComplexDouble"]
        for t in plainStorages {
            s.insert("torch." + t + "Storage")
            s.insert("torch.cuda." + t + "Storage")
        }
        for t in ["QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4"] { s.insert("torch." + t + "Storage") }
        return s
    }()

    /// Every `torch.<dtype>` name torch allowlists.
    public static let dtypeNames: [String] = {
        var d = [
            "float16", "float32", "float64", "bfloat16", "complex32", "complex64", "complex128",
            "bcomplex32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "bool", "qint8", "quint8", "qint32", "quint4x2", "quint2x4", "float8_e4m3fn",
            "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
            "float4_e2m1fn_x2", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
        ]
        for n in 1...7 { d.append("uint\(n)"); d.append("int\(n)") }
        return d
    }()

    /// Modules torch blocks outright, whatever the allowlist says.
    public static let blockedModules: Set<String> = ["sys", "os", "posix", "nt"]

    /// True when `torch.load(weights_only=True)` accepts this global.
    public static func allows(_ global: String) -> Bool {
        let module = global.split(separator: ".").first.map(String.init) ?? global
        return !blockedModules.contains(module) && globals.contains(global)
    }

    /// Opcodes the weights_only unpickler implements (34); any other opcode makes it fail
    /// with "Unsupported operand".
    public static let opcodes: Set<UInt8> = [
        0x80, 0x2e, 0x63, 0x81, 0x52, 0x62, 0x61, 0x65, 0x73, 0x75, 0x28, 0x74, 0x85, 0x86, 0x87,
        0x4e, 0x89, 0x88, 0x29, 0x5d, 0x7d, 0x8f, 0x4a, 0x4b, 0x4d, 0x47, 0x58, 0x55, 0x51, 0x68,
        0x6a, 0x71, 0x72, 0x8a,
    ]
}
