#if canImport(CMalloc)
    import CMalloc
#endif

/// How the process allocates memory, set once at start (``QToolsCommand/main()``).
enum MemoryPolicy {
    /// Large blocks (128 KiB and up) get their own mappings, returned to the system when freed.
    ///
    /// glibc starts with that threshold but raises it to the size of each mapped block freed
    /// (up to 32 MiB), after which blocks below it come from the heap, whose free space stays
    /// resident. Planning a model frees each weight tensor as it packs it into one buffer of
    /// its own: on the heap, the freed weights would stay resident beside the packed copy
    /// (ResNet-50 with random weights: 232 MiB peak instead of 150). Setting the threshold
    /// fixes it at glibc's default. A run allocates no large blocks, so speed is unchanged.
    static func apply() {
        #if canImport(CMalloc)
            _ = mallopt(M_MMAP_THRESHOLD, 128 << 10)
        #endif
    }

    /// Training: every step allocates and frees the same large activation and gradient
    /// arrays (tens of MiB at batch 128). As separate mappings each would be faulted in and
    /// zeroed by the kernel again on every step; kept on the heap (threshold at glibc's
    /// maximum, 32 MiB on 64-bit, and no trimming of the heap's top) they are reused.
    /// Measured (ResNet-20 w0.25, batch 128, `bench --train`): minor page faults 1.35 M ->
    /// 77 k and CPU time 8.8 -> 6.7 s (fp, 1 thread); 16.5 -> 11.0 s (LSQ 2-bit, 2 threads);
    /// peak RSS +1%.
    /// Running a planned model: once its weights are packed (the reason for ``apply()``), the
    /// ops that run outside the arena (quantizers on the function path: FATNN, LQ-Nets, XNOR
    /// scales, imported element-wise programs) allocate and free their output arrays on every
    /// run; kept on the heap, as in ``training()``, they are reused instead of faulted in and
    /// zeroed by the kernel each time (FATNN ternary ResNet-18: a tenth of `bench`'s time was
    /// page faults).
    static func running() { training() }

    static func training() {
        #if canImport(CMalloc)
            _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
            _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        #endif
    }
}
