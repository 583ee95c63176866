import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Ctrl-C (SIGINT) and SIGTERM during `qtools train`: the first asks the run to stop after the
/// current training step, once a checkpoint is written (``requested``); a second one stops the
/// process at once, leaving the last complete checkpoint in place (checkpoints are written to
/// a temporary file and renamed, so no partial file ever replaces it).
enum TrainInterrupt {
    /// The first signal received, 0 for none.
    static let received = Atomic<Int32>(0)

    /// Installs the handlers for SIGINT and SIGTERM.
    static func install() {
        // Initialise the static now: the handler must not be the first to touch it (swift_once).
        _ = received.load(ordering: .sequentiallyConsistent)
        // A parent may have blocked them (the mask is inherited through exec): unblock them here.
        var set = sigset_t()
        unsafe sigemptyset(&set)
        unsafe sigaddset(&set, SIGINT)
        unsafe sigaddset(&set, SIGTERM)
        unsafe pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for s in [SIGINT, SIGTERM] {
            _ = signal(s) { sig in
                let (exchanged, _) = TrainInterrupt.received.compareExchange(
                    expected: 0, desired: sig, ordering: .sequentiallyConsistent)
                if exchanged {
                    if sig == SIGINT {
                        TrainInterrupt.say(
                            "\nqtools: interrupt: stopping after this step, once its checkpoint is written (Ctrl-C again to stop now; the last checkpoint is kept)\n"
                        )
                    } else {
                        TrainInterrupt.say(
                            "\nqtools: SIGTERM: stopping after this step, once its checkpoint is written (again to stop now; the last checkpoint is kept)\n"
                        )
                    }
                } else {
                    TrainInterrupt.say("\nqtools: stopped at once; the last complete checkpoint is kept (-r resumes from it)\n")
                    _exit(128 + sig)
                }
            }
        }
    }

    /// The signal that asked the run to stop, if any.
    static var requested: Int32? {
        let s = received.load(ordering: .sequentiallyConsistent)
        return s == 0 ? nil : s
    }

    /// `SIGINT`/`SIGTERM`/`signal N`.
    static func name(_ s: Int32) -> String {
        s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "signal \(s)"
    }

    /// Writes `text` to stderr with one `write(2)` (async-signal-safe for an ASCII literal).
    static func say(_ text: StaticString) {
        _ = unsafe write(2, text.utf8Start, text.utf8CodeUnitCount)
    }
}
