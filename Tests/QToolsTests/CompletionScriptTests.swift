import Foundation
import TestSupport
import Testing

/// The README's shell completion (issue 16): each shell's script names the commands and their
/// options, and bash accepts the bash script's syntax.
@Suite struct CompletionScriptTests {
    @Test(arguments: ["bash", "zsh", "fish"])
    func scriptNamesCommandsAndOptions(shell: String) throws {
        let r = try RunQTools.run(["--generate-completion-script", shell])
        #expect(r.status == 0, "\(r.stderr)")
        for word in ["inspect", "convert", "verify", "train", "--config", "--fold-bn"] {
            #expect(r.stdout.contains(word), "\(shell) completion lacks \(word)")
        }
        guard shell == "bash" else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qtools-completion-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("qtools.bash").path
        try r.stdout.write(toFile: script, atomically: true, encoding: .utf8)
        let check = try Python.runProcess("/bin/bash", ["-n", script])
        #expect(check.status == 0, "bash -n: \(check.stderr)")
    }
}
