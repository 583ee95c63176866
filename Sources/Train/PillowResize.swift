/// Pillow's `Image.resize(size, Image.BILINEAR)` for 8-bit RGB (libImaging/Resample.c), which
/// torchvision's Resize and RandomResizedCrop call on PIL images: a separable convolution with
/// the triangle filter widened by the down-scaling factor (antialiased), coefficients in
/// 22-bit fixed point, the horizontal pass first over only the rows the vertical pass uses,
/// each pass rounded and clipped to a byte. Ported operation for operation, so the bytes equal
/// Pillow's.
public enum PillowResize {
    static let precisionBits = 32 - 8 - 2

    /// Per output index: the first input index, the number of taps, and their fixed-point
    /// weights (`ksize` per output).
    struct Coefficients {
        var ksize: Int
        var bounds: [(min: Int, count: Int)]
        var weights: [Int32]
    }

    /// `precompute_coeffs` + `normalize_coeffs_8bpc` for the triangle filter (support 1).
    static func coefficients(inSize: Int, in0: Double, in1: Double, outSize: Int) -> Coefficients {
        let scale = (in1 - in0) / Double(outSize)
        let filterscale = max(scale, 1.0)
        let support = 1.0 * filterscale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(min: Int, count: Int)] = []
        bounds.reserveCapacity(outSize)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = in0 + (Double(xx) + 0.5) * scale
            var ww = 0.0
            let ss = 1.0 / filterscale
            var xmin = Int(center - support + 0.5)  // C's (int): truncation toward zero
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            for x in 0..<ksize { k[x] = 0 }
            for x in 0..<max(xmax, 0) {
                var t = (Double(x + xmin) - center + 0.5) * ss
                if t < 0 { t = -t }
                let w = t < 1 ? 1 - t : 0
                k[x] = w
                ww += w
            }
            for x in 0..<max(xmax, 0) where ww != 0 { k[x] /= ww }
            for x in 0..<ksize {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * ksize + x] = Int32(k[x] < 0 ? (-0.5 + v) : (0.5 + v))  // truncation
            }
            bounds.append((xmin, max(xmax, 0)))
        }
        return Coefficients(ksize: ksize, bounds: bounds, weights: weights)
    }

    @inline(__always) static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)
        return s <= 0 ? 0 : s >= 255 ? 255 : UInt8(s)
    }

    /// `image` resized to `width` x `height` (an unchanged size returns it as it is).
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        let needH = width != image.width, needV = height != image.height
        guard needH || needV else { return image }
        let horizontal = coefficients(inSize: image.width, in0: 0, in1: Double(image.width), outSize: width)
        var vertical = coefficients(inSize: image.height, in0: 0, in1: Double(image.height), outSize: height)
        let first = vertical.bounds[0].min
        let last = vertical.bounds[height - 1].min + vertical.bounds[height - 1].count
        var current = image
        if needH {
            for i in 0..<height { vertical.bounds[i].min -= first }
            current = horizontalPass(image, rows: first..<last, horizontal, width: width)
        }
        if needV { current = verticalPass(current, vertical, height: height) }
        return current
    }

    static func horizontalPass(_ img: RGBImage, rows: Range<Int>, _ c: Coefficients, width: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: rows.count * width * 3)
        let half = Int32(1) << Int32(precisionBits - 1)
        for (yy, y) in rows.enumerated() {
            let row = y * img.width * 3
            for xx in 0..<width {
                let (xmin, n) = c.bounds[xx]
                let kb = xx * c.ksize
                var s0 = half, s1 = half, s2 = half
                for x in 0..<n {
                    let w = c.weights[kb + x], p = row + (x + xmin) * 3
                    s0 &+= Int32(img.pixels[p]) &* w
                    s1 &+= Int32(img.pixels[p + 1]) &* w
                    s2 &+= Int32(img.pixels[p + 2]) &* w
                }
                let o = (yy * width + xx) * 3
                out[o] = clip8(s0)
                out[o + 1] = clip8(s1)
                out[o + 2] = clip8(s2)
            }
        }
        return RGBImage(pixels: out, width: width, height: rows.count)
    }

    static func verticalPass(_ img: RGBImage, _ c: Coefficients, height: Int) -> RGBImage {
        let width = img.width
        var out = [UInt8](repeating: 0, count: height * width * 3)
        let half = Int32(1) << Int32(precisionBits - 1)
        for yy in 0..<height {
            let (ymin, n) = c.bounds[yy]
            let kb = yy * c.ksize
            for xx in 0..<width {
                var s0 = half, s1 = half, s2 = half
                for y in 0..<n {
                    let w = c.weights[kb + y], p = ((y + ymin) * width + xx) * 3
                    s0 &+= Int32(img.pixels[p]) &* w
                    s1 &+= Int32(img.pixels[p + 1]) &* w
                    s2 &+= Int32(img.pixels[p + 2]) &* w
                }
                let o = (yy * width + xx) * 3
                out[o] = clip8(s0)
                out[o + 1] = clip8(s1)
                out[o + 2] = clip8(s2)
            }
        }
        return RGBImage(pixels: out, width: width, height: height)
    }

    /// `image.crop((left, top, left + width, top + height))` (inside the image).
    public static func crop(_ image: RGBImage, top: Int, left: Int, width: Int, height: Int) -> RGBImage {
        var out = [UInt8]()
        out.reserveCapacity(width * height * 3)
        for y in top..<(top + height) {
            let s = (y * image.width + left) * 3
            out.append(contentsOf: image.pixels[s..<(s + width * 3)])
        }
        return RGBImage(pixels: out, width: width, height: height)
    }
}
