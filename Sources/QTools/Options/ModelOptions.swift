import ArgumentParser

/// The model options `run`, `trace`, `verify`, `bench` and `train step` share, declared once:
/// the QTool config and the QTool options that override it (after `--` or not, one rule for
/// every command; see ``QToolOverrides``).
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "The QTool config file the model was built or trained with.")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: "QTool options applied after the config (e.g. --fm_bit 4; after -- or not).")
    var overrides: [String] = []
}
