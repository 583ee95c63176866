import Foundation

/// Loader threads that build batches `0..<total` ahead of the consumer: at most `depth`
/// batches are built or waiting beyond the one being consumed (a bounded queue), and
/// ``next()`` hands them out in index order whichever thread built them. A batch is a pure
/// function of its index, so the result does not depend on the threads' timing.
///
/// Dropping the prefetcher (an epoch stopped early) stops the threads after the batch each is
/// building.
final class BatchPrefetcher: BatchIterator {
    private let state: PrefetchState

    /// Starts `workers` threads building `make(0)`, `make(1)`, ... `make(total - 1)`.
    init(total: Int, workers: Int, depth: Int, make: @escaping @Sendable (Int) throws(TrainError) -> Batch) {
        state = PrefetchState(total: total, depth: max(depth, 1), make: make)
        for _ in 0..<max(1, min(workers, total)) {
            let s = state
            let t = Thread { s.work() }
            t.name = "qtools-loader"
            t.start()
        }
    }

    deinit { state.cancel() }

    func next() throws(TrainError) -> Batch? { try state.take() }
}

/// The queue the loader threads and the consumer share (every field under `lock`).
private final class PrefetchState: @unchecked Sendable {
    let lock = NSCondition()
    let total: Int, depth: Int
    let make: @Sendable (Int) throws(TrainError) -> Batch
    /// Built batches not yet taken, by index.
    var ready: [Int: Result<Batch, TrainError>] = [:]
    /// The next index a thread will build; the next index ``take()`` returns.
    var claimed = 0, delivered = 0
    var cancelled = false

    init(total: Int, depth: Int, make: @escaping @Sendable (Int) throws(TrainError) -> Batch) {
        self.total = total
        self.depth = depth
        self.make = make
    }

    /// A loader thread: claim the next index while the queue has room, build it, publish it.
    func work() {
        while true {
            lock.lock()
            while !cancelled && claimed < total && claimed >= delivered + depth { lock.wait() }
            if cancelled || claimed >= total {
                lock.unlock()
                return
            }
            let index = claimed
            claimed += 1
            lock.unlock()
            let result = Result { () throws(TrainError) -> Batch in try make(index) }
            lock.lock()
            ready[index] = result
            lock.broadcast()
            lock.unlock()
        }
    }

    func take() throws(TrainError) -> Batch? {
        lock.lock()
        defer { lock.unlock() }
        guard delivered < total, !cancelled else { return nil }
        while ready[delivered] == nil { lock.wait() }
        let result = ready.removeValue(forKey: delivered)!
        delivered += 1
        lock.broadcast()
        return try result.get()
    }

    func cancel() {
        lock.lock()
        cancelled = true
        ready.removeAll()
        lock.broadcast()
        lock.unlock()
    }
}
