import CImageCodecs
import Foundation

/// An 8-bit RGB image, rows of `width` x 3 bytes (Pillow's RGB layout, HWC).
public struct RGBImage: Sendable, Equatable {
    public var pixels: [UInt8]
    public var width: Int, height: Int

    public init(pixels: [UInt8], width: Int, height: Int) {
        self.pixels = pixels
        self.width = width
        self.height = height
    }
}

/// JPEG and PNG decoding with the system libjpeg-turbo and libpng (`CImageCodecs`), to what
/// Pillow's `Image.open(f).convert('RGB')` gives; the format is recognised by the first bytes,
/// not the file name.
public enum ImageDecoder {
    /// Largest image decoded (pixels); larger ones are refused before allocating.
    public static let maxPixels = 1 << 27

    /// The RGB image in `bytes`.
    /// - Throws: ``TrainError`` `.invalidInput` naming `path` with the library's message.
    public static func decode(_ bytes: [UInt8], path: String) throws(TrainError) -> RGBImage {
        var out: UnsafeMutablePointer<UInt8>? = unsafe nil
        var w: Int32 = 0, h: Int32 = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = unsafe bytes.withUnsafeBufferPointer { b in
            unsafe message.withUnsafeMutableBufferPointer { m in
                unsafe qt_image_decode(b.baseAddress, b.count, maxPixels, &out, &w, &h, m.baseAddress, m.count)
            }
        }
        guard status == 0, let p = unsafe out else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw TrainError(.invalidInput("\(path): unreadable image: \(text)"))
        }
        defer { unsafe qt_image_free(p) }
        let count = Int(w) * Int(h) * 3
        let pixels = unsafe Array(UnsafeBufferPointer(start: p, count: count))
        return RGBImage(pixels: pixels, width: Int(w), height: Int(h))
    }

    /// The image in the file at `path`.
    public static func decode(path: String) throws(TrainError) -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainError(.invalidInput("\(path): unreadable image: cannot read the file"))
        }
        return try decode([UInt8](data), path: path)
    }
}
