import Dispatch
import Foundation

/// Splits work over cores: on the spinning ``WorkerPool`` when it is free, else with
/// `DispatchQueue.concurrentPerform` (no async/await in compute code).
///
/// With `threads <= 1`, or too little work, everything runs on the calling thread.
package enum Parallel {
    /// Spinning workers (``WorkerPool``): one per core beyond the caller's.
    private static let pool = WorkerPool(workers: ProcessInfo.processInfo.activeProcessorCount - 1)

    /// Calls `body(range)` on disjoint ranges covering `0..<count` (up to `4 * threads` of
    /// them), at most `threads` at once.
    ///
    /// `grain` is the smallest range worth a thread hop (in items).
    package static func forRanges(
        _ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        // Up to 4 chunks per thread, taken dynamically: a core that runs slower (this VM's
        // first core measured 1.3x slower than its second) ends up doing less.
        let chunks = min(4 * threads, max(count / max(grain, 1), 1))
        if chunks <= 1 || threads <= 1 {
            body(0..<count)
            return
        }
        // The chunks touch disjoint ranges; callers capture raw buffers, which are not
        // Sendable, so the closure is passed across the worker threads unchecked.
        nonisolated(unsafe) let work = body
        let ran = pool.run(chunks: chunks, threads: threads) { i in
            let lo = count * i / chunks, hi = count * (i + 1) / chunks
            if lo < hi { unsafe work(lo..<hi) }
        }
        if ran { return }
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let lo = count * i / chunks, hi = count * (i + 1) / chunks
            if lo < hi { unsafe work(lo..<hi) }
        }
    }
}
