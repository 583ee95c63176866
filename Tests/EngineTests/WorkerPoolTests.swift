import Dispatch
import Synchronization
import Testing

@testable import Engine

/// The spinning worker pool behind `Parallel`: every chunk of every region runs exactly once,
/// also with many regions back to back and with callers on several threads at once.
@Suite struct WorkerPoolTests {
    @Test func everyChunkRunsOncePerRegion() {
        let pool = WorkerPool(workers: 3)
        for region in 0..<2000 {
            let n = region % 4 + 1
            let counts = Mutex([Int](repeating: 0, count: n))
            let ran = pool.run(chunks: n * 3, threads: 4) { i in counts.withLock { $0[i / 3] += 1 } }
            #expect(ran)
            counts.withLock { #expect($0 == [Int](repeating: 3, count: n), "region \(region)") }
        }
        #expect(!pool.run(chunks: 5, threads: 5) { _ in }, "more threads than workers + caller are refused")
        #expect(!pool.run(chunks: 70_000, threads: 2) { _ in }, "chunk indices are 16 bits")
    }

    @Test func regionsSurviveWorkersFallingAsleep() async throws {
        let pool = WorkerPool(workers: 1)
        for _ in 0..<5 {
            try await Task.sleep(for: .milliseconds(20))  // past the spin limit: the worker sleeps
            let total = Atomic<Int>(0)
            #expect(pool.run(chunks: 2, threads: 2) { i in total.add(i + 1, ordering: .relaxed) })
            #expect(total.load(ordering: .relaxed) == 3)
        }
    }

    @Test func concurrentCallersAllGetTheirWorkDone() {
        // Callers that find the pool busy fall back to concurrentPerform inside Parallel.
        let sums = Mutex([Int](repeating: 0, count: 8))
        DispatchQueue.concurrentPerform(iterations: 8) { caller in
            for _ in 0..<200 {
                Parallel.forRanges(100, threads: 2) { r in
                    let s = r.reduce(0, +)
                    sums.withLock { $0[caller] += s }
                }
            }
        }
        sums.withLock { #expect($0 == [Int](repeating: 200 * 4950, count: 8)) }
    }
}
