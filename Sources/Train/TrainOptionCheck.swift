import QToolConfig

/// What `qtools train` does with each QTool option of a classification run (seed-reference
/// §3, §5): honoured, refused by name, or reported as having no effect on one CPU. Never
/// silently ignored.
///
/// Refused: `--mixup_enable` and the keyword `less_bn` (both call utils functions that never
/// existed: QTool crashes, §16), `--policy` files (§4), `--val_batch_size` < 1 (no validation
/// loader), the keywords `proxquant`, `probe` and `lr-test`; `--optimizer ADAM` in the loop
/// (``TrainLoop``). No effect here, with a warning when set: `--fp16` and `--opt_level` (apex
/// mixed precision, a GPU feature that eight shipped configs turn on: qtools trains in
/// float32), `--device-ids`, `--distributed`, `--world_size`, `--sync_bn` (GPU and
/// multi-process settings), `--stable_epoch` without `--stable` (as in QTool, where it reaches
/// the quantizers too late). Honoured elsewhere: `--iter-size` and `--grad_clip` (``TrainLoop``,
/// ``GradientClipping``), `--delay`, `--resume_file`, `--save_freq`, `--report_freq`,
/// `--workers`, `--tensorboard`, `--log_dir`, `--seed`, the schedule and optimizer options.
public enum TrainOptionCheck {
    /// Why each option of `options` that `qtools train` cannot honour is refused, one line each.
    public static func refusals(_ o: QToolOptions) -> [String] {
        var out: [String] = []
        if case .bool(true) = o["mixup_enable"] {
            out.append("--mixup_enable: QTool's mixup calls utils functions that never existed (it crashes)")
        }
        if o.policy != "none" && !o.policy.isEmpty { out.append("--policy \(o.policy): policy files are not supported by qtools train") }
        if o.valBatchSize < 1 { out.append("--val_batch_size \(o.valBatchSize) (no validation) is not supported; every epoch evaluates") }
        for (word, why) in [
            ("less_bn", "calls utils.custom_state, which never existed (QTool crashes)"),
            ("proxquant", "ProxQuant's blended quantizers are not implemented"),
            ("probe", "activation probes (--probe_list dumps) are not implemented; use qtools run --dump"),
            ("lr-test", "the lr-only dry run is not implemented; qtools config show prints the options"),
        ] where o.hasKeyword(word) {
            out.append("keyword \(word): \(why)")
        }
        return out
    }

    /// Options set to something other than their default that have no effect on one CPU.
    public static func withoutEffect(_ o: QToolOptions) -> [String] {
        var out: [String] = []
        if o.differsFromDefault("fp16") || o.differsFromDefault("opt_level") {
            out.append("--fp16/--opt_level have no effect: apex mixed precision is a GPU feature; qtools trains in float32")
        }
        if case .int(let e) = o["stable_epoch"], e > 0, o.stable <= 0 {
            out.append(
                "--stable_epoch has no effect on the quantizers: main.py converts it to iterations after they are built (§16); "
                    + "use --stable N (iterations)")
        }
        for (dest, flag) in [
            ("device_ids", "--device-ids"), ("distributed", "--distributed"), ("world_size", "--world_size"), ("sync_bn", "--sync_bn"),
        ]
        where o.differsFromDefault(dest) {
            out.append("\(flag) has no effect: qtools trains in one process on the CPU")
        }
        return out
    }

    /// Throws the refusals of `options`, all of them in one error.
    /// - Throws: ``TrainError`` `.unsupported` listing every refused option.
    public static func check(_ o: QToolOptions) throws(TrainError) {
        let r = refusals(o)
        guard !r.isEmpty else { return }
        throw TrainError(.unsupported(r.joined(separator: "; ")))
    }
}
