/// Every option of main.py (utils `dd1533e` `get_parser` + `task_cls.py:get_parser`) and
/// tools.py (`get_parameter`), in registration order, from seed-reference §3.1, §3.2, §3.5.
///
/// Odd defaults are kept on purpose: `--no_decay_small` is store_true with default True
/// (always True), and `--fm_half_range` is store_false with default True (passing it turns
/// half range *off*), while `--wt_half_range`/`--ot_half_range` are plain store_true.
extension QToolOptions {
    /// The option table, in argparse registration order.
    public static let table: [OptionSpec] = common + project + quantizerFamilies + tools

    /// Looks an option up by `dest`.
    public static func spec(_ dest: String) -> OptionSpec? { specsByDest[dest] }

    static let specsByDest: [String: OptionSpec] = Dictionary(
        uniqueKeysWithValues: table.map { ($0.dest, $0) })

    /// Option string → spec, in registration order (argparse `_option_string_actions`).
    static let optionStrings: [(flag: String, spec: OptionSpec)] = table.flatMap { spec in
        spec.flags.map { ($0, spec) }
    }
    static let specsByFlag: [String: OptionSpec] = Dictionary(
        uniqueKeysWithValues: optionStrings.map { ($0.flag, $0.spec) })

    private static let common: [OptionSpec] = [
        OptionSpec(
            "dataset", ["--dataset"], .string, .string("imagenet"), .data,
            "loader name: imagenet, cifar10, cifar100, dali, fake"),
        OptionSpec(
            "root", ["--root"], .string, .string("/data/imagenet/"), .data, "dataset root folder"),
        OptionSpec(
            "model", ["--model", "-m", "--arch"], .string, .string("resnet18"), .model,
            "network name (model zoo, §6)"),
        OptionSpec("epochs", ["--epochs"], .int, .int(40), .schedule, "number of scheduled epochs"),
        OptionSpec(
            "addition_augment", ["--addition_augment", "--aa"], .flag(stores: true), .bool(false),
            .data, "ImageNet train: colour jitter and PCA lighting"),
        OptionSpec("workers", ["--workers", "-j"], .int, .int(12), .data, "data-loader workers"),
        OptionSpec(
            "iter_size", ["--iter-size"], .int, .int(1), .optimizer, "gradient accumulation factor"),
        OptionSpec(
            "batch_size", ["--batch_size", "-b"], .int, .int(256), .data, "training batch size"),
        OptionSpec(
            "val_batch_size", ["--val_batch_size", "-v"], .int, .int(50), .data,
            "validation batch size (< 1 disables validation)"),
        OptionSpec("lr", ["--lr"], .float, .float(0.01), .lrPolicy, "base learning rate"),
        OptionSpec(
            "lr_policy", ["--lr_policy"], .string, .string("decay"), .lrPolicy,
            "decay, poly, fix, fix_step, custom_step, sgdr, sgdr_step, cos"),
        OptionSpec(
            "lr_decay", ["--lr_decay"], .float, .float(0.98), .lrPolicy,
            "decay factor (power for poly)"),
        OptionSpec(
            "eta_min", ["--eta_min"], .float, .float(0), .lrPolicy, "floor for sgdr/cos/poly"),
        OptionSpec(
            "lr_fix_step", ["--lr_fix_step"], .int, .int(30), .lrPolicy, "period for fix_step"),
        OptionSpec(
            "lr_custom_step", ["--lr_custom_step"], .commaIntList, .ints([20, 30, 40]), .lrPolicy,
            "comma-separated epoch milestones / restart points"),
        OptionSpec("momentum", ["--momentum"], .float, .float(0.9), .optimizer, "SGD momentum"),
        OptionSpec(
            "weight_decay", ["--weight_decay", "--wd"], .float, .float(1e-4), .weightDecay,
            "default L2 decay"),
        OptionSpec(
            "nesterov", ["--nesterov"], .flag(stores: true), .bool(false), .optimizer,
            "SGD Nesterov"),
        OptionSpec(
            "no_decay_small", ["--no_decay_small"], .flag(stores: true), .bool(true), .weightDecay,
            "store_true with default True: always True"),
        OptionSpec(
            "decay_small", ["--decay_small"], .flag(stores: true), .bool(false), .weightDecay,
            "also decay 1-D and depth-wise tensors"),
        OptionSpec(
            "grad_clip", ["--grad_clip"], .float, .none, .optimizer, "max global gradient norm"),
        OptionSpec(
            "save_freq", ["--save_freq", "-s"], .int, .int(-1), .checkpoint,
            "extra periodic checkpoint copies"),
        OptionSpec(
            "report_freq", ["--report_freq"], .float, .float(20), .logging, "log every N iterations"
        ),
        OptionSpec("seed", ["--seed"], .int, .int(2), .misc, "torch manual seed"),
        OptionSpec(
            "optimizer", ["--optimizer"], .choice(["SGD", "ADAM"]), .string("SGD"), .optimizer,
            "SGD or ADAM"),
        OptionSpec(
            "device_ids", ["--device-ids", "-g"], .intArray, .ints([0, 1, 2, 3]), .hardware,
            "GPU ids (one or more)"),
        OptionSpec(
            "distributed", ["--distributed"], .flag(stores: true), .bool(false), .hardware,
            "distributed ImageNet loader (broken path)"),
        OptionSpec("world_size", ["--world_size"], .int, .int(1), .hardware, "unused"),
        OptionSpec(
            "fp16", ["--fp16"], .flag(stores: true), .bool(false), .hardware, "apex mixed precision"
        ),
        OptionSpec(
            "sync_bn", ["--sync_bn"], .flag(stores: true), .bool(false), .hardware,
            "only logs 'to be supported'"),
        OptionSpec(
            "opt_level", ["--opt_level"], .string, .string("O0"), .hardware, "apex opt level"),
        OptionSpec(
            "wakeup", ["--wakeup"], .int, .int(0), .lrPolicy, "iterations of linear LR ramp"),
        OptionSpec(
            "warmup", ["--warmup"], .int, .int(0), .schedule,
            "iterations during which optimizer.step() is skipped"),
        OptionSpec(
            "stable", ["--stable"], .int, .int(0), .quantization,
            "iterations during which quantizers calibrate and pass values through"),
        OptionSpec(
            "stable_epoch", ["--stable_epoch"], .int, .int(0), .quantization,
            "stable = train_length * stable_epoch if stable <= 0"),
        OptionSpec(
            "warmup_epoch", ["--warmup_epoch"], .int, .int(0), .schedule,
            "warmup = train_length * warmup_epoch if warmup <= 0"),
        OptionSpec(
            "extra_epoch", ["--extra_epoch"], .int, .int(0), .schedule,
            "epochs after --epochs with the LR frozen"),
        OptionSpec(
            "delay", ["--delay"], .float, .float(0), .misc, "seconds to sleep after every iteration"
        ),
        OptionSpec(
            "evaluate", ["--evaluate", "-e"], .flag(stores: true), .bool(false), .misc,
            "evaluate once and exit"),
        OptionSpec(
            "pretrained", ["--pretrained"], .string, .string(""), .checkpoint,
            "file name under weights_dir/<model>/"),
        OptionSpec(
            "resume", ["--resume", "-r"], .flag(stores: true), .bool(false), .checkpoint,
            "resume from weights_dir/<model>/<case>-<resume_file>"),
        OptionSpec(
            "resume_file", ["--resume_file"], .string, .string("checkpoint.pth.tar"), .checkpoint,
            "resume file name"),
        OptionSpec(
            "weights_dir", ["--weights_dir"], .string, .string("./weights/"), .checkpoint,
            "checkpoint folder"),
        OptionSpec("log_dir", ["--log_dir"], .string, .string("exp"), .logging, "log folder"),
        OptionSpec(
            "tensorboard", ["--tensorboard"], .flag(stores: true), .bool(false), .logging,
            "write TensorBoard scalars"),
        OptionSpec(
            "verbose", ["--verbose"], .flag(stores: true), .bool(false), .logging, "extra logging"),
        OptionSpec("case", ["--case"], .string, .string("official"), .misc, "experiment name"),
        OptionSpec(
            "keyword", ["--keyword"], .commaList, .strings(["pretrain"]), .model,
            "comma-separated feature words (§5)"),
    ]

    private static let project: [OptionSpec] = [
        OptionSpec(
            "num_classes", ["--num_classes"], .int, .none, .model,
            "class count (else cifar10 → 10, cifar100 → 100, otherwise 1000)"),
        OptionSpec(
            "input_size", ["--input_size"], .int, .none, .model,
            "input resolution (else cifar → 32, alexnet → 227, otherwise 224)"),
        OptionSpec(
            "base", ["--base"], .int, .int(1), .model, "parallel branches per block (Group-Net)"),
        OptionSpec(
            "width_alpha", ["--width_alpha"], .float, .float(1.0), .model,
            "channel width multiplier"),
        OptionSpec("block_alpha", ["--block_alpha"], .float, .float(1.0), .model, "unused"),
        OptionSpec("se_reduction", ["--se_reduction"], .int, .int(16), .model, "unused"),
        OptionSpec(
            "stem_kernel", ["--stem_kernel"], .int, .int(1), .model,
            "TResNet stem conv kernel (1 or 3)"),
        OptionSpec(
            "order", ["--order"], .string, .string("none"), .model,
            "c/b/a string for the ReShapeResolution shrink path"),
        OptionSpec(
            "policy", ["--policy"], .string, .string("none"), .quantization, "policy file path (§4)"
        ),
        OptionSpec(
            "re_init", ["--re_init"], .flag(stores: true), .bool(false), .quantization,
            "init_after_load_pretrain on every custom_conv (no-op)"),
        OptionSpec(
            "proxquant_step", ["--proxquant_step", "--ps"], .int, .int(5), .quantization,
            "ProxQuant schedule"),
        OptionSpec(
            "mixup_alpha", ["--mixup_alpha"], .float, .float(0.7), .misc, "mixup Beta parameter"),
        OptionSpec(
            "mixup_enable", ["--mixup_enable"], .flag(stores: true), .bool(false), .misc,
            "enable mixup (broken)"),
        OptionSpec(
            "padding_after_quant", ["--padding_after_quant"], .flag(stores: true), .bool(false),
            .quantization, "quantize activations before zero padding"),
        OptionSpec("probe_iteration", ["--probe_iteration"], .int, .int(1), .misc, "unused"),
        OptionSpec("probe_index", ["--probe_index"], .intArray, .ints([]), .misc, "unused"),
        OptionSpec(
            "probe_list", ["--probe_list"], .commaList, .strings([""]), .misc,
            "with keyword probe: what to dump"),
        OptionSpec(
            "label_smooth", ["--label_smooth"], .float, .float(0.1), .optimizer,
            "label-smoothing epsilon (keyword label-smooth)"),
        OptionSpec(
            "custom_decay_list", ["--custom_decay_list"], .commaList, .strings([""]), .weightDecay,
            "parameter-name substrings that get --custom_decay"),
        OptionSpec(
            "custom_decay", ["--custom_decay"], .float, .float(0.02), .weightDecay,
            "decay for --custom_decay_list"),
        OptionSpec(
            "custom_lr_list", ["--custom_lr_list"], .commaList, .strings([""]), .lrPolicy,
            "parameter-name substrings that get --custom_lr"),
        OptionSpec(
            "custom_lr", ["--custom_lr"], .float, .float(1e-5), .lrPolicy, "lr for --custom_lr_list"
        ),
        OptionSpec(
            "global_buffer", ["--global_buffer"], .runtimeDictionary, .dictionary([:]), .misc,
            "runtime scratch space; not usable from the command line"),
    ]

    private static let quantizerFamilies: [OptionSpec] = QuantizerTag.allCases.flatMap(familySpecs)

    private static func familySpecs(_ tag: QuantizerTag) -> [OptionSpec] {
        let t = tag.rawValue
        let group: OptionCategory = tag == .fm ? .fm : tag == .wt ? .wt : .ot
        func spec(
            _ suffix: String, _ kind: OptionKind, _ value: OptionValue, _ help: String
        )
            -> OptionSpec
        {
            OptionSpec("\(t)_\(suffix)", ["--\(t)_\(suffix)"], kind, value, group, help)
        }
        var specs = [
            spec("bit", .float, .none, "bit width (None → 32)"),
            spec("level", .int, .none, "number of levels (None or ≤ 0 → 2^bit)"),
            tag == .fm
                ? spec(
                    "half_range", .flag(stores: false), .bool(true),
                    "store_false: passing it turns one-sided (unsigned) range OFF")
                : spec(
                    "half_range", .flag(stores: true), .bool(false), "one-sided (unsigned) range"),
            spec("separator", .float, .float(0.38), "unused"),
            spec("correlate", .float, .float(-1), "if > 0, multiplies the warm-up calibration max"),
            spec("ratio", .float, .float(1), "custom_ratio for non-uniform"),
            spec(
                "scale", .float, .float(0.5),
                "LQ threshold / non-uniform init / gradient-scale multiplier"),
            spec("enable", .flag(stores: true), .bool(false), "create and apply the quantizer"),
            spec("boundary", .float, .none, "initial clip value (None → 1.0 for DoReFa family)"),
            spec("quant_group", .int, .none, "groups sharing one scale"),
            spec(
                "adaptive", .choice(QuantizerAdaptive.allCases.map(\.rawValue)), .string("none"),
                "normalisation before quantization"),
        ]
        if tag == .fm {
            specs.append(
                spec(
                    "custom", .choice(QuantizerCustom.allCases.map(\.rawValue)), .string("none"),
                    "XNOR activation scale"))
        }
        let gradTypes =
            tag == .fm ? ["none", "STE", "Triangle", "STE-scale"] : ["none", "STE", "STE-scale"]
        specs.append(spec("grad_type", .choice(gradTypes), .string("none"), "gradient estimator"))
        specs.append(
            spec(
                "grad_scale", .choice(QuantizerGradScale.allCases.map(\.rawValue)), .string("none"),
                "gradient scaling"))
        if tag == .ot {
            specs.append(
                spec(
                    "independent_parameter", .flag(stores: true), .bool(false),
                    "custom_eltwise: True raises 'not fully implemented'"))
        }
        return specs
    }

    private static let tools: [OptionSpec] = [
        OptionSpec("old", ["--old"], .string, .string(""), .tools, "input checkpoint path"),
        OptionSpec("new", ["--new"], .string, .string(""), .tools, "output checkpoint path"),
        OptionSpec(
            "mapping_from", ["--mapping_from", "--mf"], .string, .string(""), .tools,
            "text file of source names"),
        OptionSpec(
            "mapping_to", ["--mapping_to", "--mt"], .string, .string(""), .tools,
            "text file of target names"),
        OptionSpec(
            "verbose_list", ["--verbose_list"], .commaList, .strings(["ratio", "sep"]), .tools,
            "names to print / swap specs / image list"),
    ]
}
