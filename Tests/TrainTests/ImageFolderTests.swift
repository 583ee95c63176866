import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// ``ImageFolderSamples`` (torchvision's ImageFolder listing), RandomResizedCrop's box, and
/// unreadable images reported by path.
@Suite struct ImageFolderTests {
    static func touch(_ path: String, _ bytes: [UInt8] = [1, 2, 3]) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func listsClassesAndImagesAsImageFolder() throws {
        try withTemporaryDirectory { dir in
            let t = dir.path + "/train"
            for f in ["n02/b.JPEG", "n02/a.png", "n02/notes.txt", "n02/sub/c.jpg", "n01/z.jpeg", "n01/Y.Png", "B/x.webp"] {
                try Self.touch("\(t)/\(f)")
            }
            try Self.touch("\(t)/stray.jpg")
            let s = try ImageFolderSamples.scan(t, augment: true, side: 224)
            #expect(s.classes == ["B", "n01", "n02"])
            #expect(
                s.paths.map { String($0.dropFirst(t.count + 1)) }
                    == ["B/x.webp", "n01/Y.Png", "n01/z.jpeg", "n02/a.png", "n02/b.JPEG", "n02/sub/c.jpg"])
            #expect(s.labels == [0, 1, 1, 2, 2, 2] && s.sampleShape == [3, 224, 224])
        }
    }

    static func expectError(_ body: () throws -> Void, mentions parts: [String]) {
        CIFARDatasetTests.expectError(body, mentions: parts)
    }

    @Test func aWrongLayoutIsNamed() throws {
        try withTemporaryDirectory { dir in
            Self.expectError(
                { _ = try ImageFolderSamples.scan(dir.path + "/train", augment: true, side: 8) },
                mentions: [dir.path + "/train", "no such folder"])
            try Self.touch(dir.path + "/val/img.jpg")
            Self.expectError(
                { _ = try ImageFolderSamples.scan(dir.path + "/val", augment: false, side: 8) },
                mentions: [dir.path + "/val", "no class folders"])
            try Self.touch(dir.path + "/val/cat/readme.txt")
            Self.expectError(
                { _ = try ImageFolderSamples.scan(dir.path + "/val", augment: false, side: 8) },
                mentions: [dir.path + "/val/cat", "no image files"])
        }
    }

    @Test func anUnreadableImageIsReportedByPath() throws {
        try withTemporaryDirectory { dir in
            let bad = dir.path + "/val/cat/broken.JPEG"
            try Self.touch(bad, [0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a])
            try Self.touch(dir.path + "/val/dog/text.png", Array("hello".utf8))
            let s = try ImageFolderSamples.scan(dir.path + "/val", augment: false, side: 8)
            let loader = SampleLoader(s, shuffle: false, seed: 0)
            Self.expectError({ _ = try loader.batches(epoch: 0, size: 1).next() }, mentions: [bad, "unreadable image", "JPEG"])
            Self.expectError(
                { _ = try ImageDecoder.decode(path: dir.path + "/val/dog/text.png") },
                mentions: [dir.path + "/val/dog/text.png", "not a JPEG or PNG"])
            Self.expectError(
                { _ = try ImageDecoder.decode(path: dir.path + "/missing.png") },
                mentions: [dir.path + "/missing.png", "cannot read"])
        }
    }

    @Test func randomResizedCropBoxesFitTheRanges() {
        var rng = SplitMix64(seed: 1)
        var fallbacks = 0
        for (w, h) in [(500, 375), (64, 64), (33, 300), (1000, 10)] {
            for _ in 0..<300 {
                let b = ImageNetTransform.randomResizedCropBox(width: w, height: h, rng: &rng)
                #expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w, "\(w)x\(h): \(b)")
                let frac = Double(b.width * b.height) / Double(w * h)
                let ratio = Double(b.width) / Double(b.height)
                if frac > 0.999 || (w, h) == (1000, 10) { fallbacks += 1 }
                if (w, h) == (1000, 10) {
                    // Nothing fits a 1000 x 10 image in ten tries: the centre crop clamped to 4/3.
                    #expect(b == .init(top: 0, left: (1000 - 13) / 2, height: 10, width: 13))
                } else if (w, h) != (33, 300) {
                    #expect(frac >= 0.07 && frac <= 1.0, "\(w)x\(h): area fraction \(frac)")
                    #expect(ratio >= 0.7 && ratio <= 1.4, "\(w)x\(h): ratio \(ratio)")
                }
            }
        }
        #expect(fallbacks >= 300)
    }

    @Test func valResizeKeepsTheShorterSideAt256() {
        #expect(ImageNetTransform.resizedSize(width: 500, height: 375) == (341, 256))
        #expect(ImageNetTransform.resizedSize(width: 300, height: 400) == (256, 341))
        #expect(ImageNetTransform.resizedSize(width: 256, height: 256) == (256, 256))
    }
}

/// Decoding and the transforms against Pillow (and torch's float32 ToTensor/Normalize) on
/// the same files.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (Pillow, torch)"))
struct ImageNetPillowTests {
    /// Pillow is installed by scripts/setup.sh; locally without it the suite passes empty.
    static var pillow: Bool {
        if (try? Python.run("import PIL"))?.status == 0 { return true }
        if Python.isRequired { Issue.record("Pillow is missing from the reference Python (scripts/setup.sh --python)") }
        return false
    }

    static let writer = """
        import json, os, sys
        import numpy as np
        from PIL import Image
        d = sys.argv[1]
        rng = np.random.default_rng(5)
        def picture(w, h):
            y, x = np.mgrid[0:h, 0:w]
            base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60], -1)
            return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        rgb = Image.fromarray(picture(37, 23))
        big = Image.fromarray(picture(300, 200))
        files = {
            'rgb.jpg': (rgb, dict(quality=90)), 'rgb444.jpg': (rgb, dict(quality=95, subsampling=0)),
            'progressive.jpg': (rgb, dict(progressive=True)), 'gray.jpg': (rgb.convert('L'), {}),
            'cmyk.jpg': (rgb.convert('CMYK'), {}), 'big.jpg': (big, dict(quality=85)),
            'rgb.png': (rgb, {}), 'gray.png': (rgb.convert('L'), {}), 'bits.png': (rgb.convert('1'), {}),
            'palette.png': (rgb.convert('P', palette=Image.ADAPTIVE, colors=17), {}),
            'rgba.png': (Image.fromarray(np.dstack([picture(37, 23), picture(37, 23)[:, :, :1]])), {}),
            'la.png': (rgb.convert('LA'), {}), 'big.png': (big, {}),
        }
        out = {'decode': {}, 'resize': {}}
        for name, (im, kw) in files.items():
            im.save(os.path.join(d, name), **kw)
            out['decode'][name] = np.asarray(Image.open(os.path.join(d, name)).convert('RGB')).tobytes().hex()
        src = Image.open(os.path.join(d, 'big.png')).convert('RGB')
        for w, h in [(224, 224), (341, 256), (17, 9), (300, 57), (45, 200), (1, 1)]:
            out['resize'][f'{w}x{h}'] = np.asarray(src.resize((w, h), Image.BILINEAR)).tobytes().hex()
        small = Image.open(os.path.join(d, 'rgb.png')).convert('RGB')
        out['upscale'] = np.asarray(small.resize((80, 61), Image.BILINEAR)).tobytes().hex()
        print(json.dumps(out))
        """

    static func bytes(_ hex: String) -> [UInt8] { UnpicklerTestsBytes.bytes(hex) }

    @Test func decodingAndResizingMatchPillow() throws {
        guard Self.pillow else { return }
        try withTemporaryDirectory { dir in
            let r = try #require(try Python.json(Self.writer, [dir.path]) as? [String: Any])
            let decode = try #require(r["decode"] as? [String: String])
            #expect(decode.count == 13)
            for (name, hex) in decode.sorted(by: { $0.key < $1.key }) {
                let img = try ImageDecoder.decode(path: dir.path + "/" + name)
                #expect(Hex.string(img.pixels) == hex, "\(name): decoded pixels differ from Pillow's")
            }
            let big = try ImageDecoder.decode(path: dir.path + "/big.png")
            #expect(big.width == 300 && big.height == 200)
            for (size, hex) in try #require(r["resize"] as? [String: String]).sorted(by: { $0.key < $1.key }) {
                let wh = size.split(separator: "x").map { Int($0)! }
                let got = PillowResize.resize(big, width: wh[0], height: wh[1])
                #expect(Hex.string(got.pixels) == hex, "resize to \(size)")
            }
            let small = try ImageDecoder.decode(path: dir.path + "/rgb.png")
            #expect(Hex.string(PillowResize.resize(small, width: 80, height: 61).pixels) == r["upscale"] as? String)
        }
    }

    @Test func transformsMatchPillowAndTorch() throws {
        guard Self.pillow else { return }
        try withTemporaryDirectory { dir in
            _ = try Python.json(Self.writer, [dir.path])
            let boxes: [(ImageNetTransform.Box, Bool)] = [
                (.init(top: 10, left: 20, height: 150, width: 120), false), (.init(top: 0, left: 0, height: 200, width: 300), true),
                (.init(top: 50, left: 200, height: 40, width: 64), true),
            ]
            let spec = boxes.map { "[\($0.0.top),\($0.0.left),\($0.0.height),\($0.0.width),\($0.1 ? 1 : 0)]" }.joined(separator: ",")
            let r = try #require(
                try Python.json(
                    """
                    import json, sys
                    import numpy as np, torch
                    from PIL import Image
                    img = Image.open(sys.argv[1]).convert('RGB')
                    mean = torch.tensor([0.485, 0.456, 0.406]); std = torch.tensor([0.229, 0.224, 0.225])
                    def tensor(im):
                        t = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous().float().div(255)
                        return t.sub_(mean[:, None, None]).div_(std[:, None, None]).numpy().astype('<f4').tobytes().hex()
                    out = {'train': []}
                    for i, j, h, w, flip in json.loads(sys.argv[2]):
                        im = img.crop((j, i, j + w, i + h)).resize((64, 64), Image.BILINEAR)
                        if flip:
                            im = im.transpose(Image.FLIP_LEFT_RIGHT)
                        out['train'].append(tensor(im))
                    # Resize(256): shorter side 256, longer int(256 * long / short); CenterCrop(224).
                    w, h = img.size
                    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
                    im = img.resize(size, Image.BILINEAR)
                    top, left = int(round((size[1] - 224) / 2.0)), int(round((size[0] - 224) / 2.0))
                    out['val'] = tensor(im.crop((left, top, left + 224, top + 224)))
                    print(json.dumps(out))
                    """, [dir.path + "/big.jpg", "[\(spec)]"]) as? [String: Any])
            let image = try ImageDecoder.decode(path: dir.path + "/big.jpg")
            func hex(_ v: [Float]) -> String { Hex.string(v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }) }
            let train = try #require(r["train"] as? [String])
            for ((box, flip), want) in zip(boxes, train) {
                var out = [Float](repeating: 0, count: 3 * 64 * 64)
                ImageNetTransform.train(image, box: box, flip: flip, size: 64, into: &out, at: 0)
                #expect(hex(out) == want, "train \(box) flip \(flip)")
            }
            var out = [Float](repeating: 0, count: 3 * 224 * 224)
            try ImageNetTransform.val(image, size: 224, into: &out, at: 0)
            #expect(hex(out) == r["val"] as? String, "val")
        }
    }
}

extension ImageNetPillowTests {
    /// `--aa`: ColorJitter as Pillow's ImageEnhance in each order, PCA lighting as the
    /// reference's `Lighting` in torch, on fixed draws.
    @Test func colorJitterAndLightingMatchPillowAndTorch() throws {
        guard Self.pillow else { return }
        try withTemporaryDirectory { dir in
            _ = try Python.json(Self.writer, [dir.path])
            let cases: [ColorAugment.Jitter] = [
                .init(brightness: 1.3, contrast: 0.7, saturation: 1.25, order: [0, 1, 2]),
                .init(brightness: 0.65, contrast: 1.38, saturation: 0.61, order: [2, 0, 1]),
                .init(brightness: 1.01, contrast: 1.2, saturation: 1.4, order: [1, 2, 0]),
            ]
            let alpha: [Float] = [0.0625, -0.125, 0.1875]
            let spec = cases.map { "[\($0.brightness),\($0.contrast),\($0.saturation),\($0.order)]" }.joined(separator: ",")
            let r = try #require(
                try Python.json(
                    """
                    import json, sys
                    import numpy as np, torch
                    from PIL import Image, ImageEnhance
                    img = Image.open(sys.argv[1]).convert('RGB').crop((20, 10, 140, 160)).resize((48, 48), Image.BILINEAR)
                    mean = torch.tensor([0.485, 0.456, 0.406]); std = torch.tensor([0.229, 0.224, 0.225])
                    eigval = torch.Tensor([0.2175, 0.0188, 0.0045])
                    eigvec = torch.Tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
                    alpha = torch.tensor([0.0625, -0.125, 0.1875])
                    out = []
                    for b, c, s, order in json.loads(sys.argv[2]):
                        im = img.transpose(Image.FLIP_LEFT_RIGHT)
                        for k in order:
                            im = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color][k](im).enhance([b, c, s][k])
                        t = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous().float().div(255)
                        rgb = eigvec.clone().mul(alpha.view(1, 3).expand(3, 3)).mul(eigval.view(1, 3).expand(3, 3)).sum(1).squeeze()
                        t = t.add(rgb.view(3, 1, 1).expand_as(t))
                        out.append(t.sub_(mean[:, None, None]).div_(std[:, None, None]).numpy().astype('<f4').tobytes().hex())
                    print(json.dumps(out))
                    """, [dir.path + "/big.jpg", "[\(spec)]"]) as? [String])
            let image = try ImageDecoder.decode(path: dir.path + "/big.jpg")
            func hex(_ v: [Float]) -> String { Hex.string(v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }) }
            #expect(r.count == cases.count)
            for (j, want) in zip(cases, r) {
                var out = [Float](repeating: 0, count: 3 * 48 * 48)
                ImageNetTransform.train(
                    image, box: .init(top: 10, left: 20, height: 150, width: 120), flip: true, size: 48, jitter: j,
                    lighting: alpha, into: &out, at: 0)
                #expect(hex(out) == want, "jitter \(j)")
            }
        }
    }
}

enum UnpicklerTestsBytes {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }
}
