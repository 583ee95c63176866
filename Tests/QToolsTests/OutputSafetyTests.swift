import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// No command may destroy a file: an output that is one of the command's inputs (through any
/// path or link) is refused, an existing output needs --force, special files are written in
/// place, and a killed, size-limited or racing writer leaves the destination absent, as it
/// was, or complete. Every case runs the built binary.
@Suite struct OutputSafetyTests {
    static let checkpoint = Fixtures.path("golden/resnet20_lq_a2w2/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_lq_a2w2/config.txt")
    static let inputNpy = Fixtures.path("golden/resnet20_lq_a2w2/input.npy")
    static var isRoot: Bool { geteuid() == 0 }

    /// Runs a bash script with `$Q` the qtools binary and `$D` the directory.
    static func sh(_ script: String, in dir: URL) throws -> Python.Result {
        try Python.runProcess("/bin/bash", ["-c", "set -u; Q=\"$1\"; D=\"$2\"; cd \"$D\"\n" + script, "bash", RunQTools.binary, dir.path])
    }

    static func sha(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func files(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    /// A copy of the golden checkpoint, config and input in `dir`.
    static func copyInputs(_ dir: URL) throws -> (ckpt: String, config: String, input: String) {
        let c = dir.appendingPathComponent("ck.pth").path
        let f = dir.appendingPathComponent("cfg.txt").path
        let x = dir.appendingPathComponent("x.npy").path
        try FileManager.default.copyItem(atPath: checkpoint, toPath: c)
        try FileManager.default.copyItem(atPath: config, toPath: f)
        try FileManager.default.copyItem(atPath: inputNpy, toPath: x)
        return (c, f, x)
    }

    /// A float32 safetensors file of `count` values (big enough that a conversion takes a
    /// while, so kills land in every phase).
    static func writeSafetensors(_ path: String, count: Int) throws {
        var header = Array(#"{"w":{"dtype":"F32","shape":[\#(count)],"data_offsets":[0,\#(4 * count)]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes: [UInt8] = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        bytes.reserveCapacity(bytes.count + 4 * count)
        for i in 0..<count { withUnsafeBytes(of: Float(i % 1000) * 0.001) { bytes.append(contentsOf: $0) } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    // MARK: - outputs that are inputs

    @Test func runRefusesEveryFileItReadsAsOutputEvenWithForce() throws {
        try withTemporaryDirectory { dir in
            let (ck, cfg, x) = try Self.copyInputs(dir)
            let link = dir.appendingPathComponent("link.pth").path
            let hard = dir.appendingPathComponent("hard.pth").path
            let cfgLink = dir.appendingPathComponent("cfg-link").path
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "ck.pth")
            try FileManager.default.linkItem(atPath: ck, toPath: hard)
            try FileManager.default.createSymbolicLink(atPath: cfgLink, withDestinationPath: cfg)
            let before = try [ck, cfg, x].map(Self.sha)
            let listing = try Self.files(dir)
            let relative = dir.appendingPathComponent("sub").path
            try FileManager.default.createDirectory(atPath: relative, withIntermediateDirectories: false)
            for out in [ck, link, hard, cfg, cfgLink, x, relative + "/../ck.pth"] {
                for force in [false, true] {
                    let r = try RunQTools.run(
                        ["run", ck, "--config", cfg, "--input", x, "--output", out] + (force ? ["--force"] : []))
                    #expect(r.status == 64, "\(out): \(r.stderr)")
                    #expect(r.stderr.hasPrefix("qtools: error: the output \(out) is the input file"), "\(r.stderr)")
                }
            }
            #expect(try [ck, cfg, x].map(Self.sha) == before)
            #expect(try Self.files(dir) == (listing + ["sub"]).sorted())
        }
    }

    @Test func convertAndMappingRefuseTheirInputsThroughSymlinks() throws {
        try withTemporaryDirectory { dir in
            let (ck, cfg, _) = try Self.copyInputs(dir)
            let mapping = dir.appendingPathComponent("map.txt").path
            try "b\na\n".write(toFile: mapping, atomically: true, encoding: .utf8)
            let link = dir.appendingPathComponent("link.pth").path
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: ck)
            let mapLink = dir.appendingPathComponent("map-link.txt").path
            try FileManager.default.createSymbolicLink(atPath: mapLink, withDestinationPath: "map.txt")
            let before = try [ck, cfg, mapping].map(Self.sha)
            for args in [
                ["convert", ck, "-o", link, "--force"],
                ["convert", ck, "-o", mapLink, "--force", "--format", "pt", "--map-from", mapping, "--map-to", mapping],
                ["convert", ck, "-o", cfg, "--force", "--format", "pt", "--config", cfg],
                ["mapping", "sort", mapping, "-o", mapLink, "--force"],
            ] {
                let r = try RunQTools.run(args)
                #expect(r.status == 64, "\(args): \(r.stderr)")
                #expect(r.stderr.contains("is the input file"), "\(r.stderr)")
            }
            #expect(try [ck, cfg, mapping].map(Self.sha) == before)
            #expect(try Self.files(dir) == ["cfg.txt", "ck.pth", "link.pth", "map-link.txt", "map.txt", "x.npy"])
        }
    }

    @Test func runNeedsForceToReplaceAnExistingOutput() throws {
        try withTemporaryDirectory { dir in
            let (ck, cfg, x) = try Self.copyInputs(dir)
            let out = dir.appendingPathComponent("logits.npy").path
            try Data("keep".utf8).write(to: URL(fileURLWithPath: out))
            let r = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", out])
            #expect(r.status == 73, "\(r.stderr)")
            #expect(r.stderr.contains("file exists") && r.stderr.contains("--force"))
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep")
            let forced = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", out, "--force"])
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try Self.sha(out).prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
            #expect(try Self.files(dir) == ["cfg.txt", "ck.pth", "logits.npy", "x.npy"])
        }
    }

    /// An output that is a symlink: the file it points to is replaced (atomically, with
    /// --force when it exists) and the link stays a link; a dangling link gets its target.
    @Test func aSymlinkOutputWritesItsTargetAndStaysALink() throws {
        try withTemporaryDirectory { dir in
            let (ck, cfg, x) = try Self.copyInputs(dir)
            let fm = FileManager.default
            try fm.createDirectory(atPath: dir.appendingPathComponent("store").path, withIntermediateDirectories: false)
            let target = dir.appendingPathComponent("store/logits.npy").path
            let link = dir.appendingPathComponent("logits.npy").path
            try Data("keep".utf8).write(to: URL(fileURLWithPath: target))
            try fm.createSymbolicLink(atPath: link, withDestinationPath: "store/logits.npy")
            let refused = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", link])
            #expect(refused.status == 73 && refused.stderr.contains("file exists"), "\(refused.stderr)")
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep")
            let forced = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", link, "--force"])
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try fm.destinationOfSymbolicLink(atPath: link) == "store/logits.npy")
            #expect(try Self.sha(target).prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
            #expect(try Self.files(dir.appendingPathComponent("store")) == ["logits.npy"])
            // Dangling: the link's target is created; a link loop is a clear error.
            let dangling = dir.appendingPathComponent("new.npy").path
            try fm.createSymbolicLink(atPath: dangling, withDestinationPath: "store/new.npy")
            let created = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", dangling])
            #expect(created.status == 0, "\(created.stderr)")
            #expect(try Self.sha(dir.appendingPathComponent("store/new.npy").path).prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
            #expect(try fm.destinationOfSymbolicLink(atPath: dangling) == "store/new.npy")
            let loop = dir.appendingPathComponent("loop.npy").path
            try fm.createSymbolicLink(atPath: loop, withDestinationPath: "loop.npy")
            let looped = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", loop, "--force"])
            #expect(looped.status != 0 && looped.stderr.contains("loop.npy"), "\(looped.status) \(looped.stderr)")
            #expect(try fm.destinationOfSymbolicLink(atPath: loop) == "loop.npy")
        }
    }

    // MARK: - special files

    @Test func dashAndDevStdoutWriteTheLogitsToStdoutAndTheReportToStderr() throws {
        try withTemporaryDirectory { dir in
            let (ck, cfg, x) = try Self.copyInputs(dir)
            let file = dir.appendingPathComponent("ref.npy").path
            let ref = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", file])
            #expect(ref.status == 0, "\(ref.stderr)")
            let expected = try Self.sha(file)
            for out in ["-", "/dev/stdout"] {
                let r = try Self.sh("\"$Q\" run ck.pth --config cfg.txt --input x.npy --output \(out) | od -An -v -tx1", in: dir)
                #expect(r.status == 0, "\(r.stderr)")
                let bytes = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0, radix: 16) }
                #expect(Data(bytes) == expected, "\(out)")
                #expect(r.stderr.contains("top-5"))
            }
            // /dev/stdout redirected to a file: written through the shell's descriptor.
            let r = try Self.sh("\"$Q\" run ck.pth --config cfg.txt --input x.npy --output /dev/stdout -q > via-stdout.npy", in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Self.sha(dir.appendingPathComponent("via-stdout.npy").path) == expected)
        }
    }

    @Test func aFIFOIsWrittenInPlaceForABackgroundReader() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            let r = try Self.sh(
                """
                mkfifo fifo
                "$Q" run ck.pth --config cfg.txt --input x.npy --output ref.npy -q >/dev/null || exit 10
                "$Q" convert ck.pth -o ref.safetensors --drop-extra -q >/dev/null || exit 11
                timeout -s KILL 20 cat fifo > got.npy & reader=$!
                timeout -s KILL 20 "$Q" run ck.pth --config cfg.txt --input x.npy --output fifo -q >/dev/null || exit 12
                wait $reader || exit 13
                cmp ref.npy got.npy || exit 14
                timeout -s KILL 20 cat fifo > got.safetensors & reader=$!
                timeout -s KILL 20 "$Q" convert ck.pth -o fifo --format safetensors --drop-extra -q >/dev/null || exit 15
                wait $reader || exit 16
                cmp ref.safetensors got.safetensors || exit 17
                test -p fifo || exit 18
                ls -A
                """, in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(
                r.stdout.split(separator: "\n") == [
                    "cfg.txt", "ck.pth", "fifo", "got.npy", "got.safetensors", "ref.npy", "ref.safetensors", "x.npy",
                ])
        }
    }

    /// As root (when the old code replaced /dev/null with a regular file): a character device
    /// with /dev/null's numbers in a temporary directory stays a device after `run --output`
    /// and `convert -o ... --force`, and needs no --force.
    @Test(.enabled(if: OutputSafetyTests.isRoot, "mknod needs root"))
    func aCharacterDeviceStaysADevice() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            let r = try Self.sh(
                """
                mknod null c 1 3 || exit 10
                "$Q" run ck.pth --config cfg.txt --input x.npy --output null -q >/dev/null || exit 11
                test -c null || exit 12
                "$Q" convert ck.pth -o null --force --format pt -q >/dev/null || exit 13
                test -c null || exit 14
                "$Q" convert ck.pth -o null --format safetensors --drop-extra -q >/dev/null || exit 15
                test -c null || exit 16
                "$Q" mapping sort cfg.txt -o null || exit 17
                test -c null || exit 18
                stat -c '%F %t:%T' null
                ls -A
                """, in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.split(separator: "\n") == ["character special file 1:3", "cfg.txt", "ck.pth", "null", "x.npy"])
        }
    }

    @Test func aDirectoryAsOutputIsAClearError() throws {
        try withTemporaryDirectory { dir in
            let (ck, cfg, x) = try Self.copyInputs(dir)
            let sub = dir.appendingPathComponent("out.npy").path
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
            let r = try RunQTools.run(["run", ck, "--config", cfg, "--input", x, "--output", sub, "--force"])
            #expect(r.status == 73)
            #expect(r.stderr.contains("cannot write \(sub): is a directory"), "\(r.stderr)")
        }
    }

    // MARK: - killed, limited and racing writers

    /// SIGKILL at random points of `convert` and `run`: the input keeps its bytes, the
    /// destination is absent, the previous file or the complete new one, and a later run
    /// succeeds and removes the leftovers of the killed ones.
    @Test func killedWritersNeverLeaveAPartialFile() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            try Self.writeSafetensors(dir.appendingPathComponent("big.safetensors").path, count: 1 << 20)
            let r = try Self.sh(
                """
                mkdir ref out
                in_sum=$(sha1sum big.safetensors ck.pth | sha1sum)
                "$Q" convert big.safetensors -o ref/dest --format safetensors --dtype float16 -q >/dev/null || exit 10
                "$Q" run ck.pth --config cfg.txt --input x.npy --output ref/logits -q >/dev/null || exit 11
                echo previous > prev
                killed=0; done=0
                RANDOM=7
                for i in $(seq 1 32); do
                  if [ $((i % 2)) = 0 ]; then
                    cmd=("$Q" convert big.safetensors -o out/dest --format safetensors --dtype float16 -q); dest=out/dest; ref=ref/dest
                  else
                    cmd=("$Q" run ck.pth --config cfg.txt --input x.npy --output out/logits -q); dest=out/logits; ref=ref/logits
                  fi
                  if [ $((i % 4)) -lt 2 ]; then rm -f "$dest"; force=(); else cp prev "$dest"; force=(--force); fi
                  "${cmd[@]}" "${force[@]}" >/dev/null 2>&1 & pid=$!
                  sleep "$(printf '0.%03d' $((RANDOM % 250)))"
                  kill -9 $pid 2>/dev/null
                  wait $pid; status=$?
                  if [ $status = 137 ]; then killed=$((killed+1)); else done=$((done+1)); fi
                  if [ -e "$dest" ]; then
                    cmp -s "$dest" "$ref" || cmp -s "$dest" prev || { echo "partial $dest after kill $i (status $status)"; exit 20; }
                  fi
                done
                [ "$(sha1sum big.safetensors ck.pth | sha1sum)" = "$in_sum" ] || exit 21
                "$Q" convert big.safetensors -o out/dest --format safetensors --dtype float16 -q --force >/dev/null || exit 22
                "$Q" run ck.pth --config cfg.txt --input x.npy --output out/logits -q --force >/dev/null || exit 23
                cmp out/dest ref/dest && cmp out/logits ref/logits || exit 24
                echo "killed=$killed done=$done"
                ls -A out
                """, in: dir)
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.dropFirst() == ["dest", "logits"], "leftovers: \(lines)")
            // The loop must have killed writers mid-way, not only before or after.
            let killed = lines.first.flatMap { $0.split(separator: " ").first?.split(separator: "=").last }.flatMap { Int($0) }
            #expect((killed ?? 0) >= 8, "\(lines)")
        }
    }

    @Test func aFileSizeLimitIsAClearErrorAndKeepsThePreviousFile() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            let r = try Self.sh(
                """
                echo previous > out.pth
                ( ulimit -f 100; exec "$Q" convert ck.pth -o out.pth --force -q ) > /dev/null 2> err.txt
                echo "status=$?"
                cat err.txt
                cat out.pth
                ls -A
                """, in: dir)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "status=73", "\(r.stdout)")
            #expect(lines.dropFirst().first?.hasPrefix("qtools: error: cannot write out.pth: File too large") == true, "\(lines)")
            #expect(lines.suffix(6) == ["previous", "cfg.txt", "ck.pth", "err.txt", "out.pth", "x.npy"], "\(lines)")
        }
    }

    /// A read-only destination directory: as root, with CAP_DAC_OVERRIDE dropped (capsh),
    /// since root writes anywhere otherwise.
    @Test(.enabled(if: !OutputSafetyTests.isRoot || FileManager.default.isExecutableFile(atPath: "/usr/sbin/capsh"), "root without capsh"))
    func aReadOnlyDirectoryIsAClearErrorAndKeepsThePreviousFile() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            let wrap = Self.isRoot ? #"/usr/sbin/capsh --drop=cap_dac_override,cap_dac_read_search -- -c 'exec "$@"' --"# : ""
            let r = try Self.sh(
                """
                mkdir ro && echo previous > ro/out.pth && echo previous > ro/logits.npy && chmod 555 ro
                \(wrap) "$Q" convert ck.pth -o ro/out.pth --force -q > /dev/null 2> err1.txt; echo "convert=$?"
                \(wrap) "$Q" run ck.pth --config cfg.txt --input x.npy --output ro/logits.npy --force -q > /dev/null 2> err2.txt; echo "run=$?"
                chmod 755 ro
                cat err1.txt err2.txt ro/out.pth ro/logits.npy
                ls -A ro
                """, in: dir)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.prefix(2) == ["convert=73", "run=73"], "\(lines) \(r.stderr)")
            #expect(lines.contains("qtools: error: cannot write ro/out.pth: Permission denied"), "\(lines)")
            #expect(lines.suffix(4) == ["previous", "previous", "logits.npy", "out.pth"], "\(lines)")
        }
    }

    /// A full file system (a 256 KiB tmpfs in a private mount namespace, root only).
    @Test(.enabled(if: OutputSafetyTests.isRoot, "needs root for a private tmpfs"))
    func aFullFileSystemIsAClearErrorAndKeepsThePreviousFile() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            let r = try Self.sh(
                """
                mkdir small
                unshare -m bash -c '
                  mount -t tmpfs -o size=256k tmpfs small || exit 99
                  echo previous > small/out.pth
                  "$0" convert ck.pth -o small/out.pth --force -q > /dev/null 2> err.txt; echo "status=$?"
                  cat err.txt small/out.pth; ls -A small' "$Q"
                echo "unshare=$?"
                """, in: dir)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            guard lines.contains(where: { $0.hasPrefix("status=") }) else { return }  // no private mounts here
            #expect(lines.first == "status=73", "\(lines) \(r.stderr)")
            #expect(
                lines.dropFirst().first?.hasPrefix("qtools: error: cannot write small/out.pth: No space left on device") == true, "\(lines)"
            )
            #expect(lines.suffix(3) == ["previous", "out.pth", "unshare=0"], "\(lines)")
        }
    }

    /// Two writers of one destination at once: one complete file wins; without --force
    /// exactly one of them succeeds.
    @Test func racingWritersLeaveOneCompleteFile() throws {
        try withTemporaryDirectory { dir in
            _ = try Self.copyInputs(dir)
            try Self.writeSafetensors(dir.appendingPathComponent("big.safetensors").path, count: 1 << 18)
            let r = try Self.sh(
                """
                mkdir a b out
                "$Q" convert big.safetensors -o a/dest --format safetensors -q >/dev/null || exit 10
                "$Q" convert big.safetensors -o b/dest --format safetensors --dtype float16 -q >/dev/null || exit 11
                for i in 1 2 3 4; do
                  [ $i -gt 2 ] && force=--force || { rm -f out/dest; force=; }
                  "$Q" convert big.safetensors -o out/dest --format safetensors -q $force >/dev/null 2>&1 & p1=$!
                  "$Q" convert big.safetensors -o out/dest --format safetensors --dtype float16 -q $force >/dev/null 2>&1 & p2=$!
                  wait $p1; s1=$?; wait $p2; s2=$?
                  cmp -s out/dest a/dest || cmp -s out/dest b/dest || { echo "mixed file in round $i"; exit 20; }
                  if [ -z "$force" ]; then echo "$s1 $s2"; else echo "forced $s1 $s2"; fi
                done
                ls -A out
                """, in: dir)
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 5, "\(lines)")
            for l in lines.prefix(2) { #expect(l == "0 73" || l == "73 0", "\(lines)") }
            for l in lines.dropFirst(2).prefix(2) { #expect(l == "forced 0 0", "\(lines)") }
            #expect(lines.last == "dest", "\(lines)")
        }
    }
}
