import Foundation

/// A self-contained SVG of a run's curves per epoch: train and eval loss, top-1/top-5, and the
/// learning rate, three panels side by side (no scripts, no external fonts or styles).
public enum TrainCurves {
    /// One epoch's points.
    public struct Point: Sendable, Equatable {
        public var epoch: Int
        public var lr: Double
        public var trainLoss: Double
        public var top1: Double, top5: Double
        public var evalLoss: Double
        public init(epoch: Int, lr: Double, trainLoss: Double, top1: Double, top5: Double, evalLoss: Double) {
            self.epoch = epoch
            self.lr = lr
            self.trainLoss = trainLoss
            self.top1 = top1
            self.top5 = top5
            self.evalLoss = evalLoss
        }
        public init(_ r: TrainLoop.EpochRecord) {
            self.init(epoch: r.epoch, lr: r.lr, trainLoss: r.trainLoss, top1: r.top1, top5: r.top5, evalLoss: r.evalLoss)
        }
    }

    struct Series {
        var name: String
        var color: String
        var values: [(x: Double, y: Double)]
    }

    static let panelWidth = 400.0, panelHeight = 320.0
    static let margin = (left: 62.0, right: 14.0, top: 44.0, bottom: 46.0)

    /// The SVG document for `points` (sorted by epoch), titled `title`.
    public static func svg(_ points: [Point], title: String) -> String {
        let p = points.sorted { $0.epoch < $1.epoch }
        func xy(_ f: (Point) -> Double) -> [(x: Double, y: Double)] {
            p.compactMap { q in f(q).isFinite ? (Double(q.epoch), f(q)) : nil }
        }
        let panels: [(String, [Series], String)] = [
            (
                "loss",
                [
                    Series(name: "train loss", color: "#1f77b4", values: xy(\.trainLoss)),
                    Series(name: "eval loss", color: "#ff7f0e", values: xy(\.evalLoss)),
                ], ""
            ),
            (
                "accuracy (%)",
                [
                    Series(name: "top-1", color: "#2ca02c", values: xy(\.top1)),
                    Series(name: "top-5", color: "#9467bd", values: xy(\.top5)),
                ], ""
            ),
            ("learning rate", [Series(name: "lr", color: "#d62728", values: xy(\.lr))], "e"),
        ]
        let width = panelWidth * Double(panels.count), height = panelHeight + 30
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="#ffffff"/>
            <text x="\(fmt(width / 2))" y="20" text-anchor="middle" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        for (i, (name, series, style)) in panels.enumerated() {
            out += panel(name, series, x0: Double(i) * panelWidth, y0: 30, scientific: style == "e")
        }
        out += "</svg>\n"
        return out
    }

    static func panel(_ title: String, _ series: [Series], x0: Double, y0: Double, scientific: Bool) -> String {
        let left = x0 + margin.left, right = x0 + panelWidth - margin.right
        let top = y0 + margin.top, bottom = y0 + panelHeight - margin.bottom
        let all = series.flatMap(\.values)
        var out = "<g>\n"
        out +=
            "<text x=\"\(fmt((left + right) / 2))\" y=\"\(fmt(y0 + 18))\" text-anchor=\"middle\" font-size=\"13\">\(escape(title))</text>\n"
        out +=
            "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(right - left))\" height=\"\(fmt(bottom - top))\" fill=\"none\" stroke=\"#444\"/>\n"
        guard !all.isEmpty else { return out + "</g>\n" }
        let xs = all.map(\.x), ys = all.map(\.y)
        let (xTicks, xLo, xHi) = ticks(xs.min()!, xs.max()!, integer: true)
        let (yTicks, yLo, yHi) = ticks(ys.min()!, ys.max()!, integer: false)
        func px(_ x: Double) -> Double { left + (x - xLo) / max(xHi - xLo, 1e-300) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yLo) / max(yHi - yLo, 1e-300) * (bottom - top) }
        for t in yTicks {
            let y = py(t)
            out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(right))\" y2=\"\(fmt(y))\" stroke=\"#e4e4e4\"/>\n"
            out += "<text x=\"\(fmt(left - 5))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(label(t, scientific: scientific))</text>\n"
        }
        for t in xTicks {
            let x = px(t)
            out += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(bottom))\" x2=\"\(fmt(x))\" y2=\"\(fmt(bottom + 4))\" stroke=\"#444\"/>\n"
            out += "<text x=\"\(fmt(x))\" y=\"\(fmt(bottom + 17))\" text-anchor=\"middle\">\(Int(t.rounded()))</text>\n"
        }
        out += "<text x=\"\(fmt((left + right) / 2))\" y=\"\(fmt(bottom + 34))\" text-anchor=\"middle\">epoch</text>\n"
        var legendX = left
        for s in series where !s.values.isEmpty {
            let pts = s.values.map { "\(fmt(px($0.x))),\(fmt(py($0.y)))" }
            if pts.count > 1 {
                out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            }
            if s.values.count <= 60 {
                for v in s.values {
                    out += "<circle cx=\"\(fmt(px(v.x)))\" cy=\"\(fmt(py(v.y)))\" r=\"2.5\" fill=\"\(s.color)\"/>\n"
                }
            }
            // Legend: a row between the panel title and the plot, never over the curves.
            let ly = top - 8
            out +=
                "<line x1=\"\(fmt(legendX))\" y1=\"\(fmt(ly - 4))\" x2=\"\(fmt(legendX + 18))\" y2=\"\(fmt(ly - 4))\" stroke=\"\(s.color)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(fmt(legendX + 22))\" y=\"\(fmt(ly))\">\(escape(s.name))</text>\n"
            legendX += 34 + 7.5 * Double(s.name.count)
        }
        return out + "</g>\n"
    }

    /// About five round tick values covering `lo...hi`, and the covered range.
    static func ticks(_ lo: Double, _ hi: Double, integer: Bool) -> ([Double], Double, Double) {
        var lo = lo, hi = hi
        if hi - lo <= abs(hi) * 1e-9 || hi == lo {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= integer ? 1 : pad
            hi += integer ? 1 : pad
        }
        let raw = (hi - lo) / 5
        let mag = pow(10, floor(log10(raw)))
        let step0 = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let step = integer ? max(1, step0.rounded(.up)) : step0
        let first = floor(lo / step) * step, last = ceil(hi / step) * step
        var t: [Double] = []
        var v = first
        while v <= last + step * 1e-9 {
            t.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return (t, first, last)
    }

    static func label(_ v: Double, scientific: Bool) -> String {
        if v == 0 { return "0" }
        if scientific || abs(v) < 1e-2 || abs(v) >= 1e5 { return String(format: "%.1e", v) }
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The points a log file of ``TrainLog`` holds (its `[epoch <e>]: lr`, `train_loss` and
    /// `test_acc` lines; the last of each per epoch), so a resumed run's plot keeps its earlier epochs.
    public static func points(fromLog text: String) -> [Point] {
        var lr: [Int: Double] = [:], loss: [Int: Double] = [:], acc: [Int: (Double, Double, Double)] = [:]
        for line in text.split(separator: "\n") {
            guard let open = line.range(of: " - INFO - [epoch ") else { continue }
            let rest = line[open.upperBound...]
            guard let close = rest.firstIndex(of: "]"), let e = Int(rest[..<close]) else { continue }
            let body = rest[rest.index(after: close)...]
            let words = body.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            if body.hasPrefix(": lr "), words.count >= 3, let v = Double(words[2]) { lr[e] = v }
            if body.hasPrefix(": train_loss "), words.count >= 3, let v = Double(words[2]) { loss[e] = v }
            if body.hasPrefix(": test_acc "), words.count >= 9, let t1 = Double(words[2]), let t5 = Double(words[3]),
                let l = Double(words[words.count - 1])
            {
                acc[e] = (t1, t5, l)
            }
        }
        return acc.keys.sorted().map { e in
            let a = acc[e]!
            return Point(epoch: e, lr: lr[e] ?? .nan, trainLoss: loss[e] ?? .nan, top1: a.0, top5: a.1, evalLoss: a.2)
        }
    }
}
