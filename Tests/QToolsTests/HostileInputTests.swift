import Formats
import Foundation
import Tensors
import TestSupport
import Testing

/// Hostile or broken inputs are clear errors naming the node, entry or file: never a trap,
/// an abort in the allocator or a silently accepted corruption. Each file is built here.
@Suite struct HostileInputTests {
    static let checkpoint = Fixtures.path("golden/resnet20_lq_a2w2/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_lq_a2w2/config.txt")

    /// argv: directory. Writes a small valid graph and broken variants of it.
    static let script = """
        import sys, os, numpy as np, onnx
        from onnx import helper as h, TensorProto as T, numpy_helper as nh
        d = sys.argv[1]
        rng = np.random.default_rng(0)
        f = lambda n, v: nh.from_array(np.asarray(v, dtype=np.float32), n)
        W = f('W', rng.standard_normal((4, 3, 3, 3)))
        G = f('G', rng.standard_normal((10, 4)))
        def nodes(**over):
            base = [h.make_node('Conv', ['input', 'W'], ['c'], name='conv0', pads=[1, 1, 1, 1]),
                    h.make_node('Relu', ['c'], ['r'], name='relu0'),
                    h.make_node('MaxPool', ['r'], ['m'], name='pool0', kernel_shape=[2, 2], strides=[2, 2]),
                    h.make_node('GlobalAveragePool', ['m'], ['g'], name='gap0'),
                    h.make_node('Flatten', ['g'], ['fl'], name='flat0'),
                    h.make_node('Gemm', ['fl', 'G'], ['out'], name='fc0', transB=1)]
            return [over.get(n.name, n) for n in base]
        def save(name, ns, inits=(W, G), opset=13, check=False, **kw):
            g = h.make_graph(ns, name, [h.make_tensor_value_info('input', T.FLOAT, [1, 3, 8, 8])],
                             [h.make_tensor_value_info('out', T.FLOAT, [1, 10])], list(inits))
            m = h.make_model(g, opset_imports=[h.make_opsetid('', opset)])
            if check: onnx.checker.check_model(m, full_check=True)
            onnx.save(m, os.path.join(d, name + '.onnx'), **kw)
        save('good', nodes(), check=True)
        # Inputs deleted (inspect accepts these files; the engine must not index past them).
        save('conv_noinputs', nodes(conv0=h.make_node('Conv', [], ['c'], name='conv0')))
        save('conv_oneinput', nodes(conv0=h.make_node('Conv', ['input'], ['c'], name='conv0')))
        save('relu_noinputs', nodes(relu0=h.make_node('Relu', [], ['r'], name='relu0')))
        save('pool_noinputs', nodes(pool0=h.make_node('MaxPool', [], ['m'], name='pool0', kernel_shape=[2, 2])))
        save('gemm_nooutput', nodes(fc0=h.make_node('Gemm', ['fl', 'G'], [], name='fc0', transB=1)))
        # Absurd attribute values.
        pads = nh.from_array(np.array([0, 0, 12255233, 12255233, 0, 0, 12255233, 12255233], dtype=np.int64), 'pads')
        save('pad_huge', [h.make_node('Pad', ['input', 'pads'], ['p'], name='pad0')] +
             [h.make_node('Conv', ['p', 'W'], ['c'], name='conv0')] + nodes()[1:], inits=(W, G, pads), opset=13)
        save('stride_zero', nodes(conv0=h.make_node('Conv', ['input', 'W'], ['c'], name='conv0', strides=[0, 0])))
        save('kernel_huge', nodes(pool0=h.make_node('MaxPool', ['r'], ['m'], name='pool0', kernel_shape=[1 << 40, 2])))
        bad_strides = h.make_node('Conv', ['input', 'W'], ['c'], name='conv0')
        bad_strides.attribute.append(h.make_attribute('strides', [], attr_type=onnx.AttributeProto.INTS))
        save('strides_empty', nodes(conv0=bad_strides))
        save('sum_hole', nodes(relu0=h.make_node('Sum', ['c', ''], ['r'], name='sum0')))
        # A cycle (r = c + b, b = relu(r)), a value nothing produces, an initializer whose
        # element count overflows.
        save('cycle', nodes(relu0=h.make_node('Add', ['c', 'b'], ['r'], name='add_cycle')) +
             [h.make_node('Relu', ['r'], ['b'], name='relu_cycle')])
        save('missing_value', nodes(pool0=h.make_node('MaxPool', ['nowhere'], ['m'], name='pool0', kernel_shape=[2, 2])))
        huge = onnx.TensorProto(name='W', data_type=T.FLOAT, dims=[1 << 40, 1 << 40, 1 << 40], raw_data=bytes(16))
        save('init_overflow', nodes(), inits=(huge, G))
        save('group_negative', nodes(conv0=h.make_node('Conv', ['input', 'W'], ['c'], name='conv0', group=-3)))
        # External data: a folder with the weights beside the model, and one whose weights
        # file is a symlink to a file outside it.
        for sub in ['ext', 'link', 'outside']: os.makedirs(os.path.join(d, sub), exist_ok=True)
        for sub in ['ext', 'link']:
            save(sub + '/model', nodes(), save_as_external_data=True, all_tensors_to_one_file=True,
                 location='weights.bin', size_threshold=0)
        os.replace(os.path.join(d, 'link/weights.bin'), os.path.join(d, 'outside/weights.bin'))
        os.symlink(os.path.join(d, 'outside/weights.bin'), os.path.join(d, 'link/weights.bin'))
        np.save(os.path.join(d, 'x.npy'), rng.standard_normal((1, 3, 8, 8)).astype(np.float32))
        print('{}')
        """

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (onnx)"))
    func brokenONNXGraphsAreErrorsNamingTheNode() throws {
        try withTemporaryDirectory { dir in
            let d = dir.path
            _ = try Python.json(Self.script, [d])
            let good = try RunQTools.run(["run", "\(d)/good.onnx", "--input", "\(d)/x.npy"])
            #expect(good.status == 0, "\(good.stderr)")
            let cases: [(file: String, node: String, text: String)] = [
                ("conv_noinputs", "conv0", "expected at least 2 inputs of Conv (X, W), found 0"),
                ("conv_oneinput", "conv0", "expected at least 2 inputs of Conv (X, W), found 1"),
                ("relu_noinputs", "relu0", "expected at least 1 inputs of Relu (X), found 0"),
                ("pool_noinputs", "pool0", "expected at least 1 inputs of MaxPool (X), found 0"),
                ("gemm_nooutput", "fc0", "expected at least 1 outputs of Gemm, found 0"),
                ("pad_huge", "pad0", "Pad pads [0, 0, 12255233, 12255233, 0, 0, 12255233, 12255233]: 12255233 is outside 0...4096"),
                ("stride_zero", "conv0", "Conv strides [0, 0]: 0 is outside 1...4096"),
                ("kernel_huge", "pool0", "MaxPool kernel_shape [1099511627776, 2]: 1099511627776 is outside 1...4096"),
                ("group_negative", "conv0", "Conv group [-3]: -3 is outside 1...65536"),
                ("strides_empty", "conv0", "Conv: strides [] (2-D only)"),
                ("sum_hole", "sum0", "expected 2 named inputs of Sum, found 1"),
                ("missing_value", "pool0", "unknown value \"nowhere\""),
            ]
            for c in cases {
                let path = "\(d)/\(c.file).onnx"
                let inspect = try RunQTools.run(["inspect", path])
                #expect(inspect.status == 0, "\(c.file): inspect \(inspect.stderr)")
                for args in [
                    ["run", path, "--input", "\(d)/x.npy"], ["run", path], ["trace", path],
                    ["bench", path, "--runs", "1", "--warmup", "0"],
                ] {
                    let r = try RunQTools.run(args)
                    #expect(r.status == 65, "\(args): \(r.status) \(r.stderr)")
                    #expect(r.stderr.contains("node \"\(c.node)\"") && r.stderr.contains(c.text), "\(args): \(r.stderr)")
                    #expect(r.stderr.hasPrefix("qtools: error: \(path)"), "\(r.stderr)")
                }
            }
        }
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (onnx)"))
    func cyclesAndOverflowingInitializersAreErrors() throws {
        try withTemporaryDirectory { dir in
            let d = dir.path
            _ = try Python.json(Self.script, [d])
            for args in [["run", "\(d)/cycle.onnx"], ["trace", "\(d)/cycle.onnx"]] {
                let r = try RunQTools.run(args)
                #expect(r.status == 65, "\(args): \(r.stderr)")
                #expect(r.stderr.contains("cycle"), "\(r.stderr)")
            }
            for cmd in ["run", "inspect"] {
                let r = try RunQTools.run([cmd, "\(d)/init_overflow.onnx"])
                #expect(r.status == 65, "\(cmd): \(r.stderr)")
                #expect(r.stderr.contains("\"W\""), "\(r.stderr)")
            }
        }
    }

    /// A torch tensor view whose offset runs past the end of its storage (the pickle
    /// patched, the zip rewritten with correct CRCs).
    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch)"))
    func aViewPastTheEndOfItsStorageIsAnError() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("past.pth").path
            let script = #"""
                import sys, io, zipfile, torch
                t = torch.arange(10, dtype=torch.float32)
                buf = io.BytesIO()
                torch.save({'v': t[5:]}, buf)
                src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
                with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as out:
                    for i in src.infolist():
                        data = src.read(i.filename)
                        if i.filename.endswith('data.pkl'):
                            assert data.count(b'K\x05K\x05\x85') == 1
                            data = data.replace(b'K\x05K\x05\x85', b'K\x08K\x05\x85')  # offset 5 -> 8, size 5
                        out.writestr(i.filename, data)
                print('{}')
                """#
            _ = try Python.json(script, [path])
            for args in [["inspect", path], ["convert", path, "-o", dir.appendingPathComponent("o.safetensors").path]] {
                let r = try RunQTools.run(args)
                #expect(r.status == 65, "\(args): \(r.stderr)")
                #expect(r.stderr.contains("does not fit storage"), "\(r.stderr)")
            }
        }
    }

    @Test(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (onnx)"))
    func externalDataSymlinkOutOfTheFolderIsRefusedAndExternalDataIsNoOutput() throws {
        try withTemporaryDirectory { dir in
            let d = dir.path
            _ = try Python.json(Self.script, [d])
            let ok = try RunQTools.run(["run", "\(d)/ext/model.onnx", "--input", "\(d)/x.npy"])
            #expect(ok.status == 0, "\(ok.stderr)")
            for cmd in ["run", "inspect"] {
                let r = try RunQTools.run([cmd, "\(d)/link/model.onnx"])
                #expect(r.status == 65, "\(cmd): \(r.stderr)")
                #expect(
                    r.stderr.contains("external data location \"weights.bin\" resolves to")
                        && r.stderr.contains("outside the model's directory"), "\(r.stderr)")
            }
            // The external data file is an input: never an output, even with --force.
            let weights = "\(d)/ext/weights.bin"
            let before = try Data(contentsOf: URL(fileURLWithPath: weights))
            let r = try RunQTools.run(["run", "\(d)/ext/model.onnx", "--input", "\(d)/x.npy", "--output", weights, "--force"])
            #expect(r.status == 64, "\(r.stderr)")
            #expect(r.stderr.contains("the output \(weights) is the input file"), "\(r.stderr)")
            let c = try RunQTools.run(["convert", "\(d)/ext/model.onnx", "-o", weights, "--format", "safetensors", "--force"])
            #expect(c.status == 64, "\(c.stderr)")
            #expect(c.stderr.contains("the output \(weights) is the input file"), "\(c.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: weights)) == before)
        }
    }

    @Test func traceOfAHugeSizeAllocatesNothingAndRunsAreCheckedAgainstTheMachine() throws {
        // 8 x 100000^2 activations (320 GB): trace computes shapes only.
        let t = try Python.runProcess(
            "/bin/bash", ["-c", "ulimit -v 4000000; exec \"$0\" trace --config \"$1\" --size 100000 --json", RunQTools.binary, Self.config])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("\"input_shape\"") || t.stdout.contains("100000"), "\(t.stdout.prefix(300))")
        // bench plans the same size, and refuses it before allocating.
        let b = try RunQTools.run(["bench", "pytorch-resnet18", "--size", "100000", "--runs", "1", "--warmup", "0"])
        #expect(b.status == 65, "\(b.stderr)")
        #expect(b.stderr.contains("at input [1, 3, 100000, 100000] needs") && b.stderr.contains("this machine has"), "\(b.stderr)")
        // Shapes whose element count overflows are usage errors.
        for args in [
            ["trace", "--config", Self.config, "--size", "100000000"],
            ["trace", "pytorch-resnet18", "--size", "16000000", "--batch", "16000000"],
        ] {
            let r = try RunQTools.run(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("input shape ["), "\(r.stderr)")
        }
    }

    /// A stored record whose bytes do not match its CRC-32: convert and run read every byte
    /// and refuse it naming the record; a damaged data.pkl is refused by every reader.
    @Test func aBadCRCIsAnErrorNamingTheRecord() throws {
        try withTemporaryDirectory { dir in
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.checkpoint)))
            let zip = try ZipArchive(ByteSlice(bytes))
            let tensor = try #require(zip.entries.first { $0.name.hasSuffix("/data/0") && $0.uncompressedSize >= 4 })
            let pkl = try #require(zip.entries.first { $0.name.hasSuffix("/data.pkl") })
            bytes[tensor.dataOffset] ^= 0x01
            let bad = dir.appendingPathComponent("bad.pth").path
            try Data(bytes).write(to: URL(fileURLWithPath: bad))
            let out = dir.appendingPathComponent("out.safetensors").path
            let c = try RunQTools.run(["convert", bad, "-o", out, "--drop-extra"])
            #expect(c.status == 65, "\(c.stderr)")
            #expect(c.stderr.contains(tensor.name) && c.stderr.contains("CRC-32 mismatch"), "\(c.stderr)")
            let r = try RunQTools.run(["run", bad, "--config", Self.config])
            #expect(r.status == 65 && r.stderr.contains(tensor.name) && r.stderr.contains("CRC-32 mismatch"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))

            // A flipped byte in a pickle string (the record is read whole by every reader).
            var p = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.checkpoint)))
            let pklBytes = Array(p[pkl.dataOffset..<(pkl.dataOffset + pkl.compressedSize)])
            let at = try #require(pklBytes.firstRange(of: Array("state_dict".utf8))?.lowerBound)
            p[pkl.dataOffset + at] = UInt8(ascii: "S")
            let badPkl = dir.appendingPathComponent("badpkl.pth").path
            try Data(p).write(to: URL(fileURLWithPath: badPkl))
            let i = try RunQTools.run(["inspect", badPkl])
            #expect(i.status == 65 && i.stderr.contains(pkl.name) && i.stderr.contains("CRC-32 mismatch"), "\(i.stderr)")
        }
    }
}
