import CKernels
import Dispatch
import Foundation
import Synchronization

/// Persistent worker threads for ``Parallel``: between parallel regions a worker spins for a
/// short while (during a forward pass the next kernel step starts within microseconds) and
/// then sleeps on a semaphore, so most regions start without waking a thread. The caller's
/// thread takes part in every region.
///
/// One region runs at a time; a caller that finds the pool busy (another engine on another
/// thread, e.g. parallel tests) gets `false` and uses `DispatchQueue.concurrentPerform`.
///
/// Protocol: `state` packs (region << 32 | chunks << 16 | next chunk). A thread takes chunk
/// `i` of region `r` only by a compare-exchange from `(r, c, i)` to `(r, c, i + 1)` with
/// `i < c`, so a thread still finishing one region can never take a chunk of the next by
/// mistake. `unfinished` counts chunks not yet done; the caller returns when it reaches 0,
/// and only then clears `job`, which a chunk's runner reads after taking the chunk.
final class WorkerPool: @unchecked Sendable {
    /// Spin iterations before a worker sleeps (tens of microseconds).
    private static let spinLimit = 20_000

    /// Workers; a region runs on at most `workers + 1` threads.
    let workers: Int
    private let busy = Mutex(false)
    private let state = Atomic<UInt64>(0)
    private let unfinished = Atomic<Int>(0)
    /// Workers `0 ..< helpers` take part in the current region.
    private let helpers = Atomic<Int>(0)
    /// The CPU the current region's caller runs on (-1 unknown).
    private let callerCPU = Atomic<Int>(-1)
    /// Bit `w` set: worker `w` sleeps (or is about to) on `wake[w]`.
    private let sleeping = Atomic<UInt64>(0)
    private let wake: [DispatchSemaphore]
    /// The current region's work; set before the region is published in `state`.
    nonisolated(unsafe) private var job: ((Int) -> Void)? = nil

    init(workers: Int) {
        self.workers = max(0, min(workers, 63))
        wake = (0..<self.workers).map { _ in DispatchSemaphore(value: 0) }
        for w in 0..<self.workers {
            // The threads hold the pool for good (they never exit), so a pool is never freed
            // under a worker; an unused pool's workers just sleep.
            let t = Thread { self.workerLoop(w) }
            t.name = "qtools-worker-\(w)"
            t.start()
        }
    }

    /// Runs `body(i)` for every `i` in `0..<chunks` on the caller and up to `threads - 1`
    /// workers, each taking the next chunk when it is done with one (so a slower core takes
    /// fewer). Returns false, having run nothing, when the pool is busy, `threads` exceeds
    /// `workers + 1` or `chunks` is out of range (1 ... 65535).
    func run(chunks n: Int, threads: Int, _ body: (Int) -> Void) -> Bool {
        guard n >= 1, n <= 0xffff, threads >= 1, threads <= workers + 1 else { return false }
        let acquired = busy.withLock { (b: inout Bool) -> Bool in
            if b { return false }
            b = true
            return true
        }
        guard acquired else { return false }
        defer { busy.withLock { $0 = false } }
        withoutActuallyEscaping(body) { escaping in
            unsafe job = escaping
            callerCPU.store(Int(qk_current_cpu()), ordering: .relaxed)
            helpers.store(threads - 1, ordering: .sequentiallyConsistent)
            unfinished.store(n, ordering: .sequentiallyConsistent)
            let region = (state.load(ordering: .sequentiallyConsistent) >> 32) &+ 1
            let published = region << 32 | UInt64(n) << 16
            state.store(published, ordering: .sequentiallyConsistent)
            let asleep = sleeping.exchange(0, ordering: .sequentiallyConsistent)
            for w in 0..<workers where asleep & (1 << UInt64(w)) != 0 { wake[w].signal() }
            runChunks(of: region)
            while unfinished.load(ordering: .sequentiallyConsistent) > 0 {}
            unsafe job = nil
        }
        return true
    }

    /// Takes and runs chunks of `region` until none is left.
    private func runChunks(of region: UInt64) {
        var v = state.load(ordering: .sequentiallyConsistent)
        while v >> 32 == region, v & 0xffff < (v >> 16) & 0xffff {
            let (exchanged, current) = state.compareExchange(
                expected: v, desired: v + 1, ordering: .sequentiallyConsistent)
            if !exchanged {
                v = current
                continue
            }
            unsafe job?(Int(v & 0xffff))
            unfinished.subtract(1, ordering: .sequentiallyConsistent)
            v = state.load(ordering: .sequentiallyConsistent)
        }
    }

    private func workerLoop(_ w: Int) {
        var seen = state.load(ordering: .sequentiallyConsistent) >> 32
        while true {
            var spins = 0
            var region = state.load(ordering: .sequentiallyConsistent) >> 32
            while region == seen {
                spins += 1
                if spins >= Self.spinLimit {
                    // Announce, re-check, sleep: a region published after the re-check finds
                    // the bit and signals; a stale signal only costs one extra loop.
                    let bit: UInt64 = 1 << UInt64(w)
                    sleeping.bitwiseOr(bit, ordering: .sequentiallyConsistent)
                    if state.load(ordering: .sequentiallyConsistent) >> 32 == seen { wake[w].wait() }
                    sleeping.bitwiseAnd(~bit, ordering: .sequentiallyConsistent)
                    spins = 0
                }
                region = state.load(ordering: .sequentiallyConsistent) >> 32
            }
            seen = region
            if w >= helpers.load(ordering: .sequentiallyConsistent) { continue }
            // Linux may wake a worker onto its caller's CPU and leave both there, the caller
            // spinning while the worker waits for the CPU (measured: 1.5x slower runs in about
            // half the processes). Such a worker moves itself elsewhere.
            let caller = callerCPU.load(ordering: .relaxed)
            if caller >= 0, Int(qk_current_cpu()) == caller {
                _ = qk_allow_all_cpus()
                _ = qk_avoid_cpu(Int32(caller))
            }
            runChunks(of: region)
        }
    }
}
