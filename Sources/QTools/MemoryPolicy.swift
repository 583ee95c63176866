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
}
