import Testing

@testable import Formats

/// Exact renaming (not QTool's substring `import_state_dict`, seed-reference §12.4).
@Suite struct KeyRenamerTests {
    static let keys = ["conv1.weight", "bn1.weight", "layer1.0.bn1.weight", "fc.bias"]

    @Test func mappingRenamesOnlyEqualKeysAndNeverKeepsOldNames() throws {
        // §12.4's example mapping. tools.py yields 7 keys (old names kept, substring hits on
        // layer1.0.bn1.weight, fc.bias -> classifier.bias); exact renaming yields 4.
        let renamer = KeyRenamer(mapping: try KeyMapping([("bn1.weight", "bn1.0.weight"), ("fc.", "classifier.")]))
        let r = try renamer.rename(Self.keys)
        #expect(r.names == ["conv1.weight", "bn1.0.weight", "layer1.0.bn1.weight", "fc.bias"])
        #expect(r.renamed == [KeyRename(from: "bn1.weight", to: "bn1.0.weight", rules: ["mapping"])])
        #expect(r.unchanged == ["conv1.weight", "layer1.0.bn1.weight", "fc.bias"])
        #expect(r.unusedRules == ["mapping fc."])
    }

    @Test func stripPrefixTouchesOnlyKeysThatStartWithIt() throws {
        let r = try KeyRenamer(stripPrefixes: ["module.", "_orig_mod."]).rename(
            ["module.conv1.weight", "fc.module.bias", "module.module.x"])
        #expect(r.names == ["conv1.weight", "fc.module.bias", "module.x"])
        #expect(r.unusedRules == ["strip-prefix _orig_mod."])
    }

    @Test func regexReplacesEveryMatchWithGroups() throws {
        let rules = [
            try RegexRename(parsing: #"^layer(\d)\.(\d)\.downsample\.0\.=layer\1.\2.skip.1."#),
            try RegexRename(parsing: #"(?<m>bn\d)\.=\g<m>.0."#),
            try RegexRename(parsing: #"x=y"#),
        ]
        let r = try KeyRenamer(regexRules: rules).rename(
            ["layer2.0.downsample.0.weight", "layer1.0.bn1.weight", "bn1.bn2.bias", "fc.weight"])
        #expect(r.names == ["layer2.0.skip.1.weight", "layer1.0.bn1.0.weight", "bn1.0.bn2.0.bias", "fc.weight"])
        #expect(r.unusedRules == ["rename x=y"])
    }

    @Test func replacementEscapes() throws {
        let r = try KeyRenamer(regexRules: [try RegexRename(parsing: #"a=\\\g<0>\q"#)]).rename(["xa"])
        // \\ -> backslash, \g<0> -> the whole match; \q stays literal (Python's re.sub would
        // reject it; qtools documents only \N, \g<..> and \\ as special).
        #expect(r.names == [#"x\a\q"#])
    }

    @Test func stepsRunInTheDocumentedOrder() throws {
        // strip -> mapping (sees the stripped name) -> regex (sees the mapped name) -> add prefix.
        let renamer = KeyRenamer(
            stripPrefixes: ["module."], mapping: try KeyMapping([("bn1.weight", "bn1.0.weight")]),
            regexRules: [try RegexRename(parsing: #"\.0\.=.zero."#)], addPrefix: "net.")
        let r = try renamer.rename(["module.bn1.weight", "conv1.weight"])
        #expect(r.names == ["net.bn1.zero.weight", "net.conv1.weight"])
        #expect(r.renamed[0].rules == ["strip-prefix", "mapping", "rename \\.0\\.=.zero.", "add-prefix"])
    }

    @Test func collisionsNameTheTargetAndEverySource() throws {
        let e = try #require(throws: ConversionError.self) {
            try KeyRenamer(stripPrefixes: ["module."]).rename(["module.fc.bias", "fc.bias", "module.a", "a", "b"])
        }
        #expect(e.kind == .collision)
        #expect(e.message.contains("2 names collide"))
        #expect(e.message.contains("'fc.bias' <- 'module.fc.bias', 'fc.bias'"))
        #expect(e.message.contains("'a' <- 'module.a', 'a'"))
    }

    @Test func renamingOntoAnUntouchedKeyCollides() throws {
        let e = try #require(throws: ConversionError.self) {
            try KeyRenamer(mapping: try KeyMapping([("bn1.weight", "conv1.weight")])).rename(["conv1.weight", "bn1.weight"])
        }
        #expect(e.message.contains("'conv1.weight' <- 'conv1.weight', 'bn1.weight'"))
    }

    @Test func swappingTwoNamesIsNotACollision() throws {
        let m = try KeyMapping([("a", "b"), ("b", "a")])
        #expect(try KeyRenamer(mapping: m).rename(["a", "b"]).names == ["b", "a"])
    }

    @Test func badRulesAreUsageErrors() throws {
        #expect(throws: ConversionError.self) { try RegexRename(parsing: "no-equals-sign") }
        #expect(throws: ConversionError.self) { try RegexRename(parsing: "(unclosed=x") }
        #expect(throws: ConversionError.self) { try RegexRename(parsing: "=x") }
        let rule = try RegexRename(parsing: #"a=\3"#)
        let e = try #require(throws: ConversionError.self) { try KeyRenamer(regexRules: [rule]).rename(["a"]) }
        #expect(e.kind == .usage)
    }
}
