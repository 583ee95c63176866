import TestSupport
import Testing

@testable import Formats
@testable import QToolConfig

/// The shell subset, and every error a config can produce, each checked by message and line.
@Suite struct ConfigErrorTests {
    func options(_ text: String) throws -> QToolOptions {
        try QToolOptions(config: ConfigFile(text: text, path: "my.cfg"))
    }

    func failure(_ text: String) throws -> ConfigError {
        try #require(throws: ConfigError.self) { try options(text) }
    }

    // MARK: - Shell subset

    @Test func quotingExpansionAndAccumulation() throws {
        let text = #"""
            # comment
            dataset="cifar10"; model=resnet20
            export keyword='cifar10,origin'
            sub=lsq
            keyword="$keyword,dorefa,${sub}"
            #options="$options --lr 9"
              options="$options --lr 0.5"   # trailing comment
            options+=" --case 'q'\"x\"\\y"
            epochs=${EPOCHS:-7} base=${unset-2}
            options="$options \
             --seed 5"
            """#
        let config = try ConfigFile(text: text, path: "my.cfg")
        let o = try QToolOptions(config: config)
        #expect(o.dataset == "cifar10" && o.model == "resnet20")
        #expect(o.keywords == ["cifar10", "origin", "dorefa", "lsq"])
        #expect(o.lr == 0.5 && o.epochs == 7 && o.base == 2 && o.seed == 5)
        #expect(o.caseName == #"'q'"x"\y"#)  // inner quotes are literal text once inside "..."
        #expect(
            config.argumentVector.suffix(6) == [
                "--lr", "0.5", "--case", #"'q'"x"\y"#, "--seed", "5",
            ])
    }

    @Test func multiLineQuotedValueKeepsLineNumbers() throws {
        let text = """
            options="$options --lr 0.1
             --wdd 3"
            """
        let e = try failure(text)
        #expect(e.line == 2)
        #expect(e.description == "my.cfg:2: unrecognized option '--wdd'; did you mean '--wd'?")
    }

    @Test func trainScriptDefaultsApplyWhenUnset() throws {
        let config = try ConfigFile(text: "", path: "empty.cfg")
        #expect(
            config.argumentVector == [
                "--dataset", "imagenet", "--root", "/workspace/data/imagenet", "--model", "unknow",
                "--base", "1", "--epochs", "0", "-b", "20", "-v", "20", "--case", "fake",
                "--keyword", ",", "--delay", "0",
            ])
        #expect(config.arguments.allSatisfy { $0.origin == .trainScript })
        #expect(try QToolOptions(config: config).keywords == ["", ""])
    }

    @Test func emptyVariableDropsOutOfTheVector() throws {
        // bash expands `--model $model` unquoted, so an empty model leaves `--model` without a value.
        let e = try failure("model=''")
        #expect(e.kind == .missingValue)
        #expect(e.description == "my.cfg:1: argument --model/-m/--arch: expected one argument")
    }

    // MARK: - Option errors name the line

    @Test func unknownOptionSuggestsTheClosest() throws {
        let e = try failure(
            "dataset=cifar10\n options=\"$options --nesterov\"\n options=\"$options --widht_alpha 0.25\""
        )
        #expect(e.kind == .unknownOption)
        #expect(e.file == "my.cfg" && e.line == 3)
        #expect(
            e.description
                == "my.cfg:3: unrecognized option '--widht_alpha'; did you mean '--width_alpha'?")
    }

    @Test func badIntNamesOptionAndLine() throws {
        let e = try failure("\n\noptions=\"$options --epochs ten\"")
        #expect(e.kind == .badValue)
        #expect(e.description == "my.cfg:3: argument --epochs: invalid int value: 'ten'")
        // The value of `epochs=` lands in train.sh's `--epochs $epochs`; the line is the assignment's.
        #expect(
            try failure("a=1\nepochs=1.5").description
                == "my.cfg:2: argument --epochs: invalid int value: '1.5'")
    }

    @Test func badChoiceListsTheChoices() throws {
        let e = try failure(" options=\"$options --wt_adaptive varmean\"")
        #expect(e.kind == .badValue && e.line == 1)
        #expect(
            e.message
                == "argument --wt_adaptive: invalid choice: 'varmean' (choose from 'none', 'var', 'mean', 'mean-var', 'var-mean')"
        )
        #expect(e.hint == "did you mean 'var-mean'?")
        #expect(try failure("options='--fm_grad_type ste'").message.contains("'STE', 'Triangle'"))
        #expect(try failure("options='--wt_grad_type Triangle'").kind == .badValue)  // fm only
        #expect(try failure("options='--optimizer adam'").kind == .badValue)
    }

    @Test func flagWithValueAndStrayWords() throws {
        let e = try failure("options='--nesterov=1'")
        #expect(e.message == "argument --nesterov: ignored explicit argument '1'")
        let stray = try failure("options='--nesterov 1'")
        #expect(
            stray.description
                == "my.cfg:1: unrecognized argument '1'; --nesterov is a flag and takes no value")
    }

    @Test func badListItem() throws {
        let e = try failure("x=1\noptions='--lr_custom_step 30,,40'")
        #expect(
            e.description
                == "my.cfg:2: argument --lr_custom_step: invalid int '' in list '30,,40'; expected comma-separated integers such as 30,40"
        )
    }

    @Test func globalBufferIsNotSettable() throws {
        #expect(try failure("options='--global_buffer x'").kind == .badValue)
    }

    @Test func commandLineErrorsSayCommandLine() throws {
        let o = try options("model=resnet20")
        let e = try #require(throws: ConfigError.self) {
            try o.applying(arguments: ["--wdd", "0"])
        }
        #expect(e.description == "command line: unrecognized option '--wdd'; did you mean '--wd'?")
    }

    // MARK: - Shell errors

    @Test func unterminatedQuoteNamesTheOpeningLine() throws {
        let e = try failure("dataset=cifar10\noptions=\"$options --lr 1\n\nmodel=x\n")
        #expect(e.kind == .syntax)
        #expect(
            e.description
                == "my.cfg:2: unterminated double quote; the quote opened on this line is never closed"
        )
        #expect(
            try failure("a=1\n\nkeyword='x").description
                == "my.cfg:3: unterminated single quote; the quote opened on this line is never closed"
        )
    }

    @Test func refusedShellNamesTheLine() throws {
        #expect(
            try failure("a=1\nif [ -n \"$a\" ]; then b=2; fi").description
                == "my.cfg:2: shell keyword 'if' is not supported; config files may only assign variables (name=value)"
        )
        #expect(try failure("\necho hi").message == "command 'echo' is not supported")
        #expect(
            try failure("a=$(ls)").message
                == "command substitution or arithmetic '$(' is not supported")
        #expect(try failure("a=`ls`").kind == .unsupportedShell)
        #expect(try failure("a=$1").message == "special parameter '$1' is not supported")
        #expect(try failure("a=b | c").message == "shell operator '|' is not supported")
        #expect(try failure("a=${b:=3}").kind == .unsupportedShell)
        #expect(try failure("a=${").kind == .syntax)
        #expect(try failure("source other.cfg").line == 1)
    }

    /// A variable that includes itself twice doubles per line: the fuzzer's 8 KB config took
    /// seconds (and would grow without bound); the word limit stops it at the line, in every
    /// form of expansion, while a realistically long accumulation still parses.
    @Test func selfDoublingExpansionIsBounded() throws {
        let doubling = "options=\"--wd 1e-4\"\n" + String(repeating: "options=\"$options $options\"\n", count: 40)
        let e = try failure(doubling)
        #expect(e.kind == .badValue)
        #expect(e.line == 18)  // 2^17 copies of 10 bytes first pass 1 MiB on line 1 + 17
        #expect(e.message.contains("$options") && e.message.contains("1 MiB"))
        let braced = "a=xxxxxxxx\n" + String(repeating: "a=${a}${a:-}\n", count: 30)
        #expect(try failure(braced).kind == .badValue)
        let appended = "a=xxxxxxxx\n" + String(repeating: "a+=$a\n", count: 30)
        #expect(try failure(appended).kind == .badValue)
        let long = (0..<2000).map { _ in "options=\"$options --wd 1e-4\"" }.joined(separator: "\n")
        #expect(try options(long).weightDecay == 1e-4)
    }

    @Test func missingFileIsUnreadable() throws {
        let e = try #require(throws: ConfigError.self) {
            try ConfigFile(contentsOf: Fixtures.path("seed-configs/config.does-not-exist"))
        }
        #expect(e.kind == .unreadable)
        #expect(e.description.hasSuffix("config.does-not-exist: no such config file"))
    }
}
