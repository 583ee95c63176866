import Foundation
import Tensors

/// `--dataset imagenet`: torchvision's `ImageFolder(root/train)` and `ImageFolder(root/val)`.
/// Classes are the sorted sub-folder names (class index = position); samples are the files
/// with an image extension (`.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp`, any case) in
/// each class folder and its sub-folders, in sorted walk order. JPEG and PNG are decoded (by
/// content, not extension); any other file is reported by path when it is read.
public struct ImageFolderSamples: SampleSet {
    public static let extensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    public var classes: [String]
    public var paths: [String]
    public var labels: [Int]
    /// The train transform (RandomResizedCrop + flip) or the val one (Resize + CenterCrop).
    public var augment: Bool
    /// The output side (`input_size`).
    public var side: Int
    /// `--aa`: ColorJitter and PCA lighting in the train transform.
    public var colorAugment = false

    public var count: Int { paths.count }
    public var sampleShape: [Int] { [3, side, side] }
    public func label(_ index: Int) -> Int { labels[index] }

    public func load(_ index: Int, rng: inout SplitMix64, into out: inout [Float], at offset: Int) throws(TrainError) {
        let image = try ImageDecoder.decode(path: paths[index])
        if augment {
            ImageNetTransform.train(image, size: side, augment: colorAugment, rng: &rng, into: &out, at: offset)
        } else {
            do { try ImageNetTransform.val(image, size: side, into: &out, at: offset) } catch {
                throw TrainError(.invalidInput("\(paths[index]): \(error)"))
            }
        }
    }

    /// Byte order of the UTF-8 names: Python's sort of `str`.
    static func sorted(_ names: [String]) -> [String] {
        names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }

    /// Scans `folder` as ImageFolder does.
    /// - Throws: ``TrainError`` `.invalidInput` naming the folder when it is missing, has no
    ///   class folders, or a class folder holds no image.
    public static func scan(_ folder: String, augment: Bool, side: Int) throws(TrainError) -> ImageFolderSamples {
        guard isDirectory(folder) else {
            throw TrainError(
                .invalidInput(
                    "\(folder): no such folder (--dataset imagenet reads ImageFolder trees --root/train and --root/val, one sub-folder of images per class)"
                ))
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let classes = sorted(entries.filter { isDirectory((folder as NSString).appendingPathComponent($0)) })
        guard !classes.isEmpty else {
            throw TrainError(.invalidInput("\(folder): no class folders (ImageFolder needs one sub-folder of images per class)"))
        }
        var paths: [String] = [], labels: [Int] = []
        for (index, name) in classes.enumerated() {
            let files = imageFiles((folder as NSString).appendingPathComponent(name))
            guard !files.isEmpty else {
                throw TrainError(
                    .invalidInput(
                        "\((folder as NSString).appendingPathComponent(name)): no image files in class folder '\(name)' (extensions \(extensions.joined(separator: " ")))"
                    ))
            }
            paths += files
            labels += Array(repeating: index, count: files.count)
        }
        return ImageFolderSamples(classes: classes, paths: paths, labels: labels, augment: augment, side: side)
    }

    /// `os.walk(dir, followlinks=True)` sorted by folder, files sorted within each.
    static func imageFiles(_ dir: String) -> [String] {
        var folders: [(String, [String])] = []
        var stack = [dir], seen = Set<String>()
        while let d = stack.popLast() {
            let real = (d as NSString).resolvingSymlinksInPath
            guard seen.insert(real).inserted else { continue }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []
            var files: [String] = []
            for n in names {
                let p = (d as NSString).appendingPathComponent(n)
                if isDirectory(p) {
                    stack.append(p)
                } else if extensions.contains(where: { n.lowercased().hasSuffix($0) }) {
                    files.append(n)
                }
            }
            folders.append((d, files))
        }
        let order = sorted(folders.map(\.0))
        let byFolder = Dictionary(folders, uniquingKeysWith: { a, _ in a })
        return order.flatMap { d in sorted(byFolder[d] ?? []).map { (d as NSString).appendingPathComponent($0) } }
    }
}
