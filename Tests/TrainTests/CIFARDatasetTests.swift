import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// ``CIFARDataset``: the binary batch files written here, malformed trees and files reported by
/// name; (interop) the Python and binary trees as a Python script writes them with numpy and
/// pickle, in the official layout and key styles.
@Suite struct CIFARDatasetTests {
    static func write(_ bytes: [UInt8], _ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A binary batch of `labels.count` records, image `i` filled with `i + seed`.
    static func binary(_ labels: [[UInt8]], seed: UInt8) -> [UInt8] {
        labels.enumerated().flatMap { i, l in l + [UInt8](repeating: UInt8(i) &+ seed, count: 3072) }
    }

    static func cifar10Binary(_ dir: URL, test: [UInt8]? = nil) throws -> String {
        let root = dir.path, folder = root + "/cifar-10-batches-bin"
        for b in 1...5 { try write(binary([[UInt8(b)], [9]], seed: UInt8(10 * b)), "\(folder)/data_batch_\(b).bin") }
        try write(test ?? binary([[0], [1], [2]], seed: 100), "\(folder)/test_batch.bin")
        return root
    }

    @Test func readsTheBinaryCIFAR10Layout() throws {
        try withTemporaryDirectory { dir in
            let (train, val) = try CIFARDataset.load(root: try Self.cifar10Binary(dir), classes: 10)
            #expect(train.count == 10 && train.augment && !val.augment)
            #expect(train.labels == [1, 9, 2, 9, 3, 9, 4, 9, 5, 9] && val.labels == [0, 1, 2])
            #expect(train.pixels.count == 10 * 3072)
            #expect(train.pixels[3 * 3072] == 21 && train.pixels[3 * 3072 + 3071] == 21)
            #expect(val.pixels[2 * 3072] == 102)
        }
    }

    @Test func readsTheBinaryCIFAR100Layout() throws {
        try withTemporaryDirectory { dir in
            let folder = dir.path + "/cifar-100-binary"
            try Self.write(Self.binary([[3, 99], [19, 42]], seed: 1), folder + "/train.bin")
            try Self.write(Self.binary([[0, 7]], seed: 5), folder + "/test.bin")
            let (train, val) = try CIFARDataset.load(root: dir.path, classes: 100)
            #expect(train.labels == [99, 42] && val.labels == [7], "the fine label, not the coarse one")
            #expect(train.pixels[3072] == 2 && val.pixels[0] == 5)
        }
    }

    static func expectError(_ body: () throws -> Void, mentions parts: [String]) {
        do {
            try body()
            Issue.record("no error; expected one mentioning \(parts)")
        } catch {
            let s = "\(error)"
            for p in parts { #expect(s.contains(p), "\(s) should mention \(p)") }
        }
    }

    @Test func aWrongLayoutNamesTheRootAndTheFolders() throws {
        try withTemporaryDirectory { dir in
            try Self.write([1, 2, 3], dir.path + "/data_batch_1")
            Self.expectError(
                { _ = try CIFARDataset.load(root: dir.path, classes: 10) },
                mentions: [dir.path, "cifar-10-batches-py", "cifar-10-batches-bin"])
            Self.expectError(
                { _ = try CIFARDataset.load(root: dir.path, classes: 100) },
                mentions: [dir.path, "cifar-100-python", "cifar-100-binary"])
        }
    }

    @Test func aMissingBatchIsNamed() throws {
        try withTemporaryDirectory { dir in
            let root = try Self.cifar10Binary(dir)
            try FileManager.default.removeItem(atPath: root + "/cifar-10-batches-bin/data_batch_4.bin")
            Self.expectError(
                { _ = try CIFARDataset.load(root: root, classes: 10) },
                mentions: ["cifar-10-batches-bin/data_batch_4.bin", "no such file"])
        }
    }

    @Test func aTruncatedBatchIsNamed() throws {
        try withTemporaryDirectory { dir in
            let full = Self.binary([[0], [1]], seed: 0)
            let root = try Self.cifar10Binary(dir, test: Array(full.dropLast(100)))
            Self.expectError(
                { _ = try CIFARDataset.load(root: root, classes: 10) },
                mentions: ["cifar-10-batches-bin/test_batch.bin", "truncated", "3073-byte records"])
        }
    }

    @Test func aLabelOutOfRangeIsNamed() throws {
        try withTemporaryDirectory { dir in
            let root = try Self.cifar10Binary(dir, test: Self.binary([[0], [10]], seed: 0))
            Self.expectError(
                { _ = try CIFARDataset.load(root: root, classes: 10) },
                mentions: ["cifar-10-batches-bin/test_batch.bin", "label 10 of image 1 is out of range for 10 classes"])
        }
    }

    @Test func aBrokenPickleIsNamed() throws {
        try withTemporaryDirectory { dir in
            let folder = dir.path + "/cifar-100-python"
            try Self.write(Array("not a pickle".utf8), folder + "/train")
            try Self.write([0x80, 0x02, 0x7d], folder + "/test")
            Self.expectError(
                { _ = try CIFARDataset.load(root: dir.path, classes: 100) },
                mentions: [folder + "/train", "not a readable CIFAR batch pickle"])
        }
    }
}

@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (numpy)"))
struct CIFARDatasetPythonTests {
    /// Writes both trees of both datasets (small batches) and returns what each split holds.
    static let writer = #"""
        import json, os, pickle, sys
        import numpy as np
        root = sys.argv[1]
        rng = np.random.default_rng(17)
        def batch(n, classes):
            return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(x) for x in rng.integers(0, classes, n)]
        def dump(path, obj, protocol):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                pickle.dump(obj, f, protocol=protocol)
        out = {}
        # cifar-10: str keys (as Python 2 wrote them, read back as str) and bytes keys, protocols 2-5.
        train10, train10l = [], []
        for b in range(1, 6):
            data, labels = batch(3 + b, 10)
            keys = ['batch_label', 'labels', 'data', 'filenames']
            if b % 2 == 0:
                keys = [k.encode() for k in keys]
            obj = dict(zip(keys, [f'training batch {b} of 5', labels, data, [f'img{i}.png' for i in range(len(labels))]]))
            dump(f'{root}/py/cifar-10-batches-py/data_batch_{b}', obj, protocol=[2, 2, 3, 4, 5][b - 1])
            train10.append(data); train10l += labels
            rec = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
            os.makedirs(f'{root}/bin/cifar-10-batches-bin', exist_ok=True)
            rec.tofile(f'{root}/bin/cifar-10-batches-bin/data_batch_{b}.bin')
        data, labels = batch(5, 10)
        dump(f'{root}/py/cifar-10-batches-py/test_batch', {'batch_label': 'testing batch 1 of 1', 'labels': labels, 'data': data}, 2)
        np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1).tofile(f'{root}/bin/cifar-10-batches-bin/test_batch.bin')
        out['cifar10'] = {'train': np.concatenate(train10).tobytes().hex(), 'train_labels': train10l,
                          'val': data.tobytes().hex(), 'val_labels': labels}
        # cifar-100: fine and coarse labels.
        os.makedirs(f'{root}/bin/cifar-100-binary', exist_ok=True)
        for split, n in [('train', 9), ('test', 4)]:
            data, fine = batch(n, 100)
            coarse = [f // 5 for f in fine]
            dump(f'{root}/py/cifar-100-python/{split}', {'filenames': ['x'] * n, 'batch_label': split, 'fine_labels': fine,
                 'coarse_labels': coarse, 'data': data}, 4)
            np.concatenate([np.array(coarse, dtype=np.uint8)[:, None], np.array(fine, dtype=np.uint8)[:, None], data],
                           axis=1).tofile(f'{root}/bin/cifar-100-binary/{split}.bin')
            out.setdefault('cifar100', {})[split if split == 'train' else 'val'] = data.tobytes().hex()
            out['cifar100'][('train' if split == 'train' else 'val') + '_labels'] = fine
        # As the official files were written (Python 2 cPickle, protocol 2): str keys and the
        # array data as BINSTRING, numpy.core names, dtype args as ints.
        import struct
        def py2(data, labels):
            def s(b): return b'U' + bytes([len(b)]) + b if len(b) < 256 else b'T' + struct.pack('<i', len(b)) + b
            n = data.shape[0]
            out = b'\x80\x02}q\x01(' + s(b'batch_label') + s(b'testing batch 1 of 1') + s(b'labels') + b']q\x02('
            out += b''.join(b'K' + bytes([l]) for l in labels) + b'e' + s(b'data')
            out += b'cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05('
            out += b'K\x01K' + bytes([n]) + b'M\x00\x0c\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07'
            out += b'(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89' + s(data.tobytes()) + b'tbu.'
            back = pickle.loads(out, encoding='bytes')
            assert (back[b'data'] == data).all() and back[b'labels'] == labels
            return out
        os.makedirs(f'{root}/py2/cifar-10-batches-py', exist_ok=True)
        for b in range(1, 6):
            n = 3 + b
            flat = np.frombuffer(bytes.fromhex(out['cifar10']['train']), dtype=np.uint8).reshape(-1, 3072)
            start = sum(3 + k for k in range(1, b))
            with open(f'{root}/py2/cifar-10-batches-py/data_batch_{b}', 'wb') as f:
                f.write(py2(flat[start:start + n], out['cifar10']['train_labels'][start:start + n]))
        with open(f'{root}/py2/cifar-10-batches-py/test_batch', 'wb') as f:
            f.write(py2(np.frombuffer(bytes.fromhex(out['cifar10']['val']), dtype=np.uint8).reshape(-1, 3072),
                        out['cifar10']['val_labels']))
        # Malformed: a label out of range, a wrong data shape.
        data, labels = batch(3, 10)
        labels[2] = 10
        dump(f'{root}/bad_label/cifar-10-batches-py/test_batch', {'labels': labels, 'data': data}, 2)
        dump(f'{root}/bad_shape/cifar-10-batches-py/test_batch', {'labels': labels, 'data': data[:, :3000]}, 4)
        print(json.dumps(out))
        """#

    @Test func readsThePythonAndBinaryTreesNumpyWrites() throws {
        try withTemporaryDirectory { dir in
            let r = try #require(try Python.json(Self.writer, [dir.path]) as? [String: [String: Any]])
            for (name, classes) in [("cifar10", 10), ("cifar100", 100)] {
                let want = try #require(r[name])
                for tree in name == "cifar10" ? ["py", "bin", "py2"] : ["py", "bin"] {
                    let (train, val) = try CIFARDataset.load(root: dir.path + "/" + tree, classes: classes)
                    #expect(Hex.string(train.pixels) == want["train"] as? String, "\(name) \(tree) train pixels")
                    #expect(train.labels == want["train_labels"] as? [Int], "\(name) \(tree) train labels")
                    #expect(Hex.string(val.pixels) == want["val"] as? String, "\(name) \(tree) val pixels")
                    #expect(val.labels == want["val_labels"] as? [Int], "\(name) \(tree) val labels")
                }
            }
            let badLabel = dir.path + "/bad_label/cifar-10-batches-py/test_batch"
            CIFARDatasetTests.expectError(
                { _ = try CIFARDataset.pickleBatch(badLabel, classes: 10) },
                mentions: [badLabel, "label 10 of image 2 is out of range for 10 classes"])
            let badShape = dir.path + "/bad_shape/cifar-10-batches-py/test_batch"
            CIFARDatasetTests.expectError(
                { _ = try CIFARDataset.pickleBatch(badShape, classes: 10) },
                mentions: [badShape, "'data' must be a uint8 numpy array N x 3072", "[3, 3000]"])
        }
    }
}
