/// QTool (main.py) options given on the command line after the config: one rule for every
/// command (`run`, `trace`, `verify`, `bench`, `train`, `convert`, `config show`): they may
/// follow a `--` or not, so `qtools run CKPT --fm_bit 4` and `qtools run CKPT -- --fm_bit 4`
/// are the same.
enum QToolOverrides {
    /// `arguments` without the `--` that may precede them (the first one only: a later `--`
    /// is main.py's own end of options).
    static func normalized(_ arguments: [String]) -> [String] {
        guard let i = arguments.firstIndex(of: "--") else { return arguments }
        var a = arguments
        a.remove(at: i)
        return a
    }
}
