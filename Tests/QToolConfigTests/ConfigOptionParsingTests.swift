import Testing

@testable import Formats
@testable import QToolConfig

/// argparse semantics (Python 3.11) and the defaults of seed-reference §3.
@Suite struct ConfigOptionParsingTests {
    func parse(_ words: String) throws -> QToolOptions {
        try QToolOptions(arguments: .commandLine(words.split(separator: " ").map(String.init)))
    }

    func error(_ words: String) throws -> ConfigError {
        try #require(throws: ConfigError.self) { try parse(words) }
    }

    @Test func defaultsFollowTheSpec() {
        let o = QToolOptions()
        #expect(o["fm_half_range"] == .bool(true))  // store_false, default True
        #expect(o["wt_half_range"] == .bool(false))
        #expect(o["ot_half_range"] == .bool(false))
        #expect(o["no_decay_small"] == .bool(true))  // store_true with default True
        #expect(o.deviceIDs == [0, 1, 2, 3])
        #expect(o.lrCustomStep == [20, 30, 40])
        #expect(o.keywords == ["pretrain"])
        #expect(o["verbose_list"] == .strings(["ratio", "sep"]))
        #expect(o["custom_decay_list"] == .strings([""]))
        #expect(o["probe_index"] == .ints([]))
        #expect(o["grad_clip"] == .none)
        #expect(o.batchSize == 256 && o.valBatchSize == 50 && o.epochs == 40 && o.lr == 0.01)
        #expect(o.weightDecay == 1e-4 && o.lrDecay == 0.98 && o.seed == 2 && o.optimizer == "SGD")
        #expect(o.root == "/data/imagenet/" && o.model == "resnet18" && o.caseName == "official")
        #expect(o.quantizer(.fm).scale == 0.5 && o.quantizer(.wt).separator == 0.38)
        #expect(o.quantizer(.ot).correlate == -1 && o.quantizer(.fm).bit == nil)
        #expect(o.quantizer(.wt).resolvedBit == 32)
        #expect(o.resolvedNumClasses == 1000 && o.resolvedInputSize == 224)
        #expect(QToolOptions.spec("fm_custom") != nil && QToolOptions.spec("wt_custom") == nil)
        #expect(QToolOptions.spec("ot_independent_parameter") != nil)
        #expect(QToolOptions.spec("fm_independent_parameter") == nil)
        // Every dest is unique and every option string maps to one option.
        #expect(Set(QToolOptions.table.map(\.dest)).count == QToolOptions.table.count)
    }

    @Test func lastOccurrenceWins() throws {
        let o = try parse("--lr 0.1 --epochs 3 --lr 0.2 --wd 0 --weight_decay 5e-4")
        #expect(o.lr == 0.2 && o.epochs == 3 && o.weightDecay == 5e-4)
    }

    @Test func aliasesReachTheSameDest() throws {
        let o = try parse("-m resnet20 -b 8 -v 2 -j 3 -s 5 --aa --ps 7 --mf a.txt --mt b.txt -e -r")
        #expect(o.model == "resnet20" && o.batchSize == 8 && o.valBatchSize == 2)
        #expect(
            o["workers"] == .int(3) && o["save_freq"] == .int(5)
                && o["addition_augment"] == .bool(true))
        #expect(o["proxquant_step"] == .int(7) && o["mapping_from"] == .string("a.txt"))
        #expect(o["mapping_to"] == .string("b.txt") && o.evaluate && o.resume)
        #expect(try parse("--arch mobilenetv2").model == "mobilenetv2")
        #expect(try parse("--iter-size 4")["iter_size"] == .int(4))
    }

    @Test func equalsFormAndAttachedShortValues() throws {
        let o = try parse("--wd=0 --lr=1e-3 -j3 -b=16 --keyword=a,b")
        #expect(o.weightDecay == 0 && o.lr == 1e-3 && o["workers"] == .int(3) && o.batchSize == 16)
        #expect(o.keywords == ["a", "b"])
        #expect(try parse("--pretrained=").pretrained == "")
    }

    @Test func combinedShortFlags() throws {
        let o = try parse("-er")
        #expect(o.evaluate && o.resume)
        #expect(try parse("-ej2")["workers"] == .int(2))
    }

    @Test func uniquePrefixesMatchAndExactNamesWin() throws {
        #expect(try parse("--lr_custom 30,40").lrCustomStep == [30, 40])
        #expect(try parse("--width 0.25").widthAlpha == 0.25)
        #expect(try parse("--fm_half").quantizer(.fm).halfRange == false)
        #expect(try parse("--lr_custom_s=1,2").lrCustomStep == [1, 2])
        // `--lr` is exact even though `--lr_policy` etc. share the prefix.
        #expect(try parse("--lr 0.5").lr == 0.5)
        // `--verbose` is exact even though `--verbose_list` starts with it.
        #expect(try parse("--verbose")["verbose"] == .bool(true))
    }

    @Test func ambiguousPrefixIsAnError() throws {
        let e = try error("--lr_ 3")
        #expect(e.kind == .ambiguousOption)
        #expect(e.message.hasPrefix("ambiguous option: --lr_ could match --lr_policy, --lr_decay"))
        #expect(e.message.contains("--lr_custom_step"))
        #expect(e.fromCommandLine)
        #expect(
            try error("--verb").message
                == "ambiguous option: --verb could match --verbose, --verbose_list")
    }

    @Test func halfRangeFlagsStoreOppositeValues() throws {
        let o = try parse("--fm_half_range --wt_half_range --ot_half_range")
        #expect(o.quantizer(.fm).halfRange == false)
        #expect(o.quantizer(.wt).halfRange == true)
        #expect(o.quantizer(.ot).halfRange == true)
        #expect(try parse("--no_decay_small")["no_decay_small"] == .bool(true))
    }

    @Test func deviceIDsTakeOneOrMoreValues() throws {
        #expect(try parse("-g 0 1").deviceIDs == [0, 1])
        #expect(try parse("-g 2 --lr 0.1").deviceIDs == [2])
        #expect(try parse("--device-ids 3 2 1 0 -e").deviceIDs == [3, 2, 1, 0])
        #expect(try parse("-g0").deviceIDs == [0])
        // `-g0 1`: the attached value is the only one, so `1` is a stray positional.
        #expect(try error("-g0 1").kind == .unknownOption)
        #expect(
            try error("-g --lr 1").message
                == "argument --device-ids/-g: expected at least one argument")
    }

    @Test func negativeNumbersAreValuesOtherDashWordsAreOptions() throws {
        #expect(try parse("--stable -1").stable == -1)
        #expect(try parse("--fm_correlate -.5").quantizer(.fm).correlate == -0.5)
        let e = try error("--wd -1e-4")
        #expect(e.kind == .missingValue)
        #expect(e.message == "argument --weight_decay/--wd: expected one argument")
    }

    @Test func postProcessingSplitsAndStrips() throws {
        let o = try parse("--keyword a,+b,,c --custom_decay_list clip_val --lr_custom_step 1,+2,03")
        #expect(o.keywords == ["a", "+b", "", "c"])
        #expect(o.customDecayList == ["clip_val"])
        #expect(o.lrCustomStep == [1, 2, 3])
        // Only the last --lr_custom_step is post-processed, as main.py does after parsing.
        #expect(try parse("--lr_custom_step x --lr_custom_step 5").lrCustomStep == [5])
        let spaced = try QToolOptions(arguments: .commandLine(["--keyword", " a , b "]))
        #expect(spaced.keywords == ["a", "b"])
    }

    @Test func pythonNumberSyntax() throws {
        #expect(try parse("--epochs 1_000").epochs == 1000)
        #expect(try parse("--epochs +7").epochs == 7)
        #expect(try parse("--lr 5.").lr == 5)
        #expect(try parse("--lr 1E2").lr == 100)
        #expect(try parse("--lr inf").lr == .infinity)
        #expect(try error("--lr 0x10").message == "argument --lr: invalid float value: '0x10'")
        #expect(try error("--epochs 1.0").message == "argument --epochs: invalid int value: '1.0'")
        #expect(try error("--epochs 1__0").kind == .badValue)
    }

    @Test func resolutionRulesOfGetModel() throws {
        #expect(try parse("--keyword cifar10,origin").resolvedNumClasses == 10)
        #expect(try parse("--keyword cifar100").resolvedNumClasses == 100)
        #expect(try parse("--keyword cifar100").resolvedInputSize == 32)
        #expect(
            try parse("--keyword cifar10 --num_classes 7 --input_size 40").resolvedNumClasses == 7)
        #expect(try parse("--keyword cifar10 --input_size 40").resolvedInputSize == 40)
        #expect(try parse("--model alexnet").resolvedInputSize == 227)
        // Exact-word membership: `cifar10x` is not `cifar10`.
        #expect(try parse("--keyword cifar10x").resolvedNumClasses == 1000)
        let q = try parse("--fm_bit 2 --wt_bit 3 --wt_level 3").quantizer(.wt)
        #expect(q.resolvedLevels == 3)
        #expect(try parse("--fm_bit 2").quantizer(.fm).resolvedLevels == 4)
        #expect(try parse("--fm_bit 2 --fm_level 0").quantizer(.fm).resolvedLevels == 4)
    }

    @Test func applyingOverridesLayersOnTop() throws {
        let base = try parse("--width_alpha 0.25 --lr 0.1")
        let o = try base.applying(arguments: ["--width_alpha", "0.125", "--fm_enable"])
        #expect(o.widthAlpha == 0.125 && o.lr == 0.1 && o.quantizer(.fm).enable)
        #expect(o.origins["width_alpha"] == .commandLine)
        #expect(o.arguments.count == base.arguments.count + 3)
        #expect(base.widthAlpha == 0.25)  // value semantics: the original is unchanged
    }

    @Test func keywordWarningsNameUnknownWordsOnly() throws {
        let o = try parse("--keyword imagenet,origin,fix_poolng,mean,,lq,mean")
        #expect(o.keywordWarnings.map(\.word) == ["fix_poolng", "mean"])
        #expect(o.keywordWarnings[0].suggestion == "fix_pooling")
        #expect(
            o.keywordWarnings[0].description
                == "unknown keyword 'fix_poolng' (ignored by QTool); did you mean 'fix_pooling'?")
        #expect(
            try parse("--keyword cifar10,origin,cbsa,dorefa,lsq,save,raw").keywordWarnings.isEmpty)
    }
}
