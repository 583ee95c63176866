import ArgumentParser

/// Options every reporting command shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON document (sorted keys) instead of text.")
    var json = false

    @Flag(name: [.short, .long], help: "Print no warnings or progress on stderr.")
    var quiet = false
}
