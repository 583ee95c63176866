import Foundation
import TestSupport
import Testing

@testable import Formats

/// Mapping files as tools.py reads them (seed-reference §13.3) and the sort/swap utilities
/// (§13.4, §13.5). Expected values are worked out by hand from the spec's rules, or produced by
/// Python itself where the rule is "what Python's str.strip / sorted does".
@Suite struct MappingFileTests {
    @Test func cleaningStripsBlanksThenDoubleThenSingleQuotesAndSkipsCommentsAndBlankLines() {
        let text = "  conv1.weight  \n\n# a comment\n\"bn1.weight\"\n'bn1.bias'\n\"'x'\"\n'\"y\"'\n  \"#z\"\n\" a b \"\r\nlast"
        let lines = MappingFile.cleanedLines(text)
        // "'x'" (double outside): strip('"') -> 'x' -> strip("'") -> x
        // '"y"' (single outside): strip('"') does nothing -> strip("'") -> "y"
        // "#z" becomes #z after cleaning and is then a comment.
        // " a b " keeps its inner blanks (quotes are stripped after the blanks).
        #expect(lines.map(\.text) == ["conv1.weight", "bn1.weight", "bn1.bias", "x", "\"y\"", " a b ", "last"])
        #expect(lines.map(\.number) == [1, 4, 5, 6, 7, 9, 10])
    }

    @Test func braceGroupExpandsTheFromLineAndIgnoresTheToLinesContent() throws {
        // The §13.3 example.
        let m = try MappingFile.parse(
            fromText: "layer1.0.bn1.{bias, running_mean, weight}\n", fromName: "mf",
            toText: "backbone.res2.0.conv1.norm.{weight, bias, running_mean}\n", toName: "mt")
        #expect(m.pairs.map(\.from) == ["layer1.0.bn1.bias", "layer1.0.bn1.running_mean", "layer1.0.bn1.weight"])
        #expect(
            m.pairs.map(\.to) == [
                "backbone.res2.0.conv1.norm.bias", "backbone.res2.0.conv1.norm.running_mean",
                "backbone.res2.0.conv1.norm.weight",
            ])
    }

    @Test func braceOnOneSideOnlyIsLiteral() throws {
        let m = try MappingFile.parse(fromText: "a.{x,y}\n", fromName: "mf", toText: "b\n", toName: "mt")
        #expect(m.pairs.map(\.from) == ["a.{x,y}"])
        #expect(m.pairs.map(\.to) == ["b"])
    }

    @Test func mixedLiteralAndBraceLinesKeepFileOrder() throws {
        let m = try MappingFile.parse(
            fromText: "'conv1.weight'\n# skip\nbn1.{weight,bias}\nfc.weight\n", fromName: "mf",
            toText: "\"conv1.weight\"\nbn1.0.{}\n\nfc.weight\n", toName: "mt")
        #expect(m.pairs.map(\.from) == ["conv1.weight", "bn1.weight", "bn1.bias", "fc.weight"])
        #expect(m.pairs.map(\.to) == ["conv1.weight", "bn1.0.weight", "bn1.0.bias", "fc.weight"])
    }

    @Test func twoBraceGroupsAreRefusedWithFileAndLine() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.parse(fromText: "x\na.{b,c}.{d,e}\n", fromName: "mf.txt", toText: "x\np.{}\n", toName: "mt.txt")
        }
        #expect(e.kind == .malformedMapping)
        #expect(e.message.contains("mf.txt:2"))
    }

    @Test func textAfterTheClosingBraceIsRefused() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.parse(fromText: "a.{b,c}.weight\n", fromName: "mf.txt", toText: "p.{}\n", toName: "mt.txt")
        }
        #expect(e.kind == .malformedMapping)
        #expect(e.message.contains("mf.txt:1") && e.message.contains("after the closing"))
    }

    @Test func unequalLengthsNameBothFilesAndCounts() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.parse(fromText: "a\nb\n# c\nc\n", fromName: "from.txt", toText: "x\n\ny\n", toName: "to.txt")
        }
        #expect(e.kind == .malformedMapping)
        #expect(e.message.contains("from.txt has 3 entries"))
        #expect(e.message.contains("to.txt has 2"))
    }

    @Test func emptyFilesAreAnError() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.parse(fromText: "# only a comment\n", fromName: "mf", toText: "\n", toName: "mt")
        }
        #expect(e.kind == .malformedMapping)
    }

    @Test func twoSourcesOnOneTargetNameBothKeys() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.parse(fromText: "a.w\nb.w\n", fromName: "mf", toText: "c.w\nc.w\n", toName: "mt")
        }
        #expect(e.kind == .malformedMapping)
        #expect(e.message.contains("'b.w'") && e.message.contains("'a.w'") && e.message.contains("'c.w'"))
        #expect(e.message.contains("mf:2"))
    }

    @Test func oneSourceWithTwoTargetsIsAnErrorButAnExactRepeatIsNot() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.parse(fromText: "a\na\n", fromName: "mf", toText: "x\ny\n", toName: "mt")
        }
        #expect(e.message.contains("'a' is mapped twice"))
        let m = try MappingFile.parse(fromText: "a\na\n", fromName: "mf", toText: "x\nx\n", toName: "mt")
        #expect(m.count == 1)
    }

    @Test func missingFileIsMissingFile() throws {
        let e = try #require(throws: ConversionError.self) {
            try MappingFile.load(fromPath: "/nonexistent/mf.txt", toPath: "/nonexistent/mt.txt")
        }
        #expect(e.kind == .missingFile)
        #expect(e.message.contains("/nonexistent/mf.txt"))
    }

    // MARK: sort (§13.5)

    @Test func sortOrdersRawLinesByCodePointKeepingTheirEnds() {
        // "a\n" < "b\n" < "c": the line without a newline lands last and stays without one.
        #expect(MappingFile.sorted("b\na\nc") == "a\nb\nc")
        #expect(MappingFile.sorted("c\nb\na") == "ab\nc\n")
        // A last line without newline landing first: "a" < "b\n".
        #expect(MappingFile.sorted("b\na") == "ab\n")
        // Nothing is cleaned: comments, quotes and blank lines are sorted too ('\n' < '"' < '#' < 'Z' < 'a').
        #expect(MappingFile.sorted("a\n#c\n\"q\"\n\nZ\n") == "\n\"q\"\n#c\nZ\na\n")
        // '\n' sorts before any printable character, so a prefix line comes first.
        #expect(MappingFile.sorted("ab\na\n") == "a\nab\n")
        // CRLF and CR are read as LF (Python text mode).
        #expect(MappingFile.sorted("b\r\na\rc") == "a\nb\nc")
        #expect(MappingFile.sorted("") == "")
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "no Python"))
    func sortAndCleaningAgreeWithPython() throws {
        let samples = [
            "layer1.0.bn1.weight\nlayer1.0.Bn1.weight\nlayer10.x\n  'x y'  \n\n#c\nZ\n\u{e9}t\u{e9}\ne\u{301}\n\u{1F600}\nlast",
            "b\r\na\r\n\"q\"\n \t\n'\"z\"'\n",
        ]
        for text in samples {
            let script = """
                import sys, json
                text = sys.argv[1]
                open(sys.argv[2], 'w', encoding='utf-8', newline='').write(text)
                lines = open(sys.argv[2], encoding='utf-8').readlines()
                clean = [l.strip().strip('\\n').strip('"').strip("'") for l in lines]
                clean = [l for l in clean if l and not l.startswith('#')]
                print(json.dumps({"sorted": ''.join(sorted(lines)), "clean": clean}))
                """
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("qtools-map-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let doc = try #require(try Python.json(script, [text, path]) as? [String: Any])
            // Compared scalar by scalar: String == would treat "\u{e9}" and "e\u{301}" as equal.
            let expected = try #require(doc["sorted"] as? String)
            #expect(Array(MappingFile.sorted(text).unicodeScalars) == Array(expected.unicodeScalars))
            #expect(MappingFile.cleanedLines(text).map(\.text) == doc["clean"] as? [String])
        }
    }

    // MARK: swap (§13.4)

    @Test func swapExchangesPositionsWithinEachBlock() throws {
        let text = (0..<10).map { "k\($0)" }.joined(separator: "\n")  // no final newline
        // N = 5, order 1-0: slots 0 and 1 of each block exchange; slots 2..4 stay.
        let out = try MappingFile.swapped(text, interval: 5, order: [1, 0])
        #expect(out == "k1\nk0\nk2\nk3\nk4\nk6\nk5\nk7\nk8\nk9\n")
    }

    @Test func swapTakesPositionsModuloTheIntervalAndMayDuplicate() throws {
        let text = "a\nb\nc\nd\ne\nf\n"
        // N = 3, order 5-2: slot 0 <- line (5 mod 3) = 2, slot 1 <- line 2; slot 2 stays.
        #expect(try MappingFile.swapped(text, interval: 3, order: [5, 2]) == "c\nc\nc\nf\nf\nf\n")
        // N = 3, order 2-0-1: a rotation.
        #expect(try MappingFile.swapped(text, interval: 3, order: [2, 0, 1]) == "c\na\nb\nf\nd\ne\n")
    }

    @Test func swapCleansLinesFirst() throws {
        // Quotes, comments and blank lines go before blocks are formed (4 entries, N = 2).
        let text = "# header\n\"a\"\n'b'\n\nc\nd\n"
        #expect(try MappingFile.swapped(text, interval: 2, order: [1, 0]) == "b\na\nd\nc\n")
    }

    @Test func swapRefusesSpecsToolsPyCouldNotRun() throws {
        let text = "a\nb\nc\n"
        #expect(throws: ConversionError.self) { try MappingFile.swapped(text, interval: 2, order: [1, 0]) }
        #expect(throws: ConversionError.self) { try MappingFile.swapped(text, interval: 3, order: [0, 1, 2, 0]) }
        #expect(throws: ConversionError.self) { try MappingFile.swapped(text, interval: 0, order: [0]) }
        #expect(try MappingFile.parseOrder("1-0-2") == [1, 0, 2])
        #expect(throws: ConversionError.self) { try MappingFile.parseOrder("1--2") }
        #expect(throws: ConversionError.self) { try MappingFile.parseOrder("ratio") }
    }
}
