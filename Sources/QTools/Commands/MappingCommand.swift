import ArgumentParser
import Formats
import Tensors

/// `qtools mapping`: tools.py's mapping-file utilities.
struct MappingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mapping",
        abstract: "Sort or reorder the lines of a key-mapping file (tools.py sort / swap).",
        subcommands: [MappingSortCommand.self, MappingSwapCommand.self]
    )
}

/// Where a mapping utility writes: stdout, or `-o FILE` atomically.
struct MappingOutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "Write to this file (atomically) instead of stdout.")
    var output: String?

    @Flag(help: "Replace an existing output file.")
    var force = false

    func emit(_ text: String, input: String) throws {
        guard let output else {
            print(text, terminator: "")
            return
        }
        let file = try OutputFile(path: output, overwrite: force, reading: [input])
        try file.write(Array(text.utf8))
        try file.commit()
    }
}

/// `qtools mapping sort FILE`.
struct MappingSortCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sort",
        abstract: "Sort a mapping file's lines (tools.py --keyword sort).",
        discussion: """
            The raw lines are sorted by Unicode code points, as Python's sorted(readlines()): \
            nothing is cleaned (comments, quotes and blank lines are sorted too) and each line \
            keeps its line end; a last line without one is written without one wherever it \
            lands. \\r\\n and \\r line ends are read as \\n (Python's text mode). tools.py wrote \
            FILE-sort; qtools writes stdout or -o.
            """)

    @Argument(help: "The mapping file.")
    var file: String

    @OptionGroup var out: MappingOutputOptions

    func run() throws {
        try ExitCodes.reporting {
            try out.emit(MappingFile.sorted(try MappingFile.readText(path: file)), input: file)
        }
    }
}

/// `qtools mapping swap FILE --interval N --order i-j-k`.
struct MappingSwapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swap",
        abstract: "Reorder lines within blocks of a mapping file (tools.py --keyword swap).",
        discussion: """
            tools.py's --verbose_list spec N/i0-i1-...-ik is --interval N --order i0-i1-...-ik. \
            The lines are cleaned as for mapping (quotes, blank and '#' lines removed); then in \
            each consecutive block of N lines, line j (j = 0...k) is replaced by the block's \
            line (ij mod N), and lines after k stay. Each line is written with a newline.

            The entry count must be a multiple of N and the order must list at most N positions \
            (exit 64 otherwise; tools.py crashed). Example: with --interval 5 --order 1-0 the \
            first two lines of every 5 are exchanged.
            """)

    @Argument(help: "The mapping file.")
    var file: String

    @Option(parsing: .unconditional, help: "Block length N.")
    var interval: Int

    @Option(help: "New order of the first positions of each block, e.g. 1-0-2.")
    var order: String

    @OptionGroup var out: MappingOutputOptions

    func run() throws {
        try ExitCodes.reporting {
            let positions = try MappingFile.parseOrder(order)
            let text = try MappingFile.readText(path: file)
            try out.emit(try MappingFile.swapped(text, interval: interval, order: positions), input: file)
        }
    }
}
