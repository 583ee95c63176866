#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Immutable bytes: either an owned array or a read-only memory map of a whole file.
///
/// All raw-pointer code for file mapping lives in this file. Pointers never escape:
/// readers use ``withUnsafeBytes(_:)`` or copy out through ``ByteSlice``.
public final class ByteStore: Sendable {
    @safe private enum Backing: @unchecked Sendable {
        case owned([UInt8])
        case mapped(UnsafeRawPointer, Int)
    }
    private let backing: Backing

    /// Number of bytes.
    public let count: Int

    /// Wraps owned bytes.
    public init(_ bytes: [UInt8]) {
        backing = .owned(bytes)
        count = bytes.count
    }

    private init(mapped base: UnsafeRawPointer, count: Int) {
        unsafe backing = .mapped(base, count)
        self.count = count
    }

    /// Errors from opening or mapping a file.
    public struct OpenError: Error, CustomStringConvertible, Sendable {
        /// The path that failed.
        public let path: String
        /// `strerror` text.
        public let reason: String
        /// True when the file does not exist or cannot be read (exit 66 in the CLI).
        public let isMissing: Bool
        public var description: String { "\(path): \(reason)" }
    }

    /// Maps a file read-only (`MAP_PRIVATE`). Empty files become an empty owned store.
    ///
    /// Listing a 4 GB checkpoint touches only the pages the zip directory and pickle live on,
    /// so peak resident memory stays small.
    public static func map(path: String) throws(OpenError) -> ByteStore {
        let fd = unsafe open(path, O_RDONLY)
        guard fd >= 0 else {
            let e = errno
            throw OpenError(path: path, reason: errorText(e), isMissing: true)
        }
        defer { close(fd) }
        var st = stat()
        guard unsafe fstat(fd, &st) == 0 else {
            throw OpenError(path: path, reason: errorText(errno), isMissing: true)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw OpenError(path: path, reason: "is a directory", isMissing: true)
        }
        let size = Int(st.st_size)
        if size == 0 { return ByteStore([]) }
        guard let p = unsafe mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
            unsafe p != MAP_FAILED
        else {
            throw OpenError(path: path, reason: errorText(errno), isMissing: false)
        }
        return unsafe ByteStore(mapped: UnsafeRawPointer(p), count: size)
    }

    private static func errorText(_ code: Int32) -> String {
        unsafe String(cString: strerror(code))
    }

    /// Reads a whole file into memory (for small files or non-mappable inputs).
    public static func read(path: String) throws(OpenError) -> ByteStore {
        let mapped = try map(path: path)
        return ByteStore(mapped.slice(0..<mapped.count).toArray())
    }

    deinit {
        if case .mapped(let p, let n) = backing {
            unsafe _ = munmap(UnsafeMutableRawPointer(mutating: p), n)
        }
    }

    /// True when the bytes come from a memory-mapped file.
    public var isMapped: Bool {
        if case .mapped = backing { return true }
        return false
    }

    /// Scoped access to all bytes; the pointer must not escape `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch backing {
        case .owned(let a):
            return try unsafe a.withUnsafeBytes { p in try unsafe body(p) }
        case .mapped(let p, let n):
            return try unsafe body(UnsafeRawBufferPointer(start: p, count: n))
        }
    }

    /// Asks the kernel to map `range` of a memory-mapped file in one go (before reading all of it);
    /// `MADV_POPULATE_READ` where the kernel has it, else `MADV_WILLNEED`. No-op for owned bytes.
    public func prefetch(_ range: Range<Int>) {
        guard case .mapped(let p, let n) = backing, !range.isEmpty else { return }
        let page = 4096
        let start = range.lowerBound / page * page
        let end = Swift.min(n, range.upperBound)
        let base = unsafe UnsafeMutableRawPointer(mutating: p) + start
        if unsafe madvise(base, end - start, 22 /* MADV_POPULATE_READ */) != 0 {
            _ = unsafe madvise(base, end - start, MADV_WILLNEED)
        }
    }

    /// Lets the kernel drop this process's resident pages of `range` of a memory-mapped file
    /// (`MADV_DONTNEED`; the pages stay in the page cache). The mapping is private and
    /// read-only, so its pages are never written: a later read faults the same bytes back in
    /// from the file. Every page the range touches is released, including ones it shares
    /// with its neighbours. No-op for owned bytes (dropping anonymous pages would zero them).
    ///
    /// Use it once bytes have been copied out (a model's weights after packing), so that the
    /// file's pages and the copy are not resident together.
    public func releasePages(_ range: Range<Int>) {
        guard case .mapped(let p, let n) = backing, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = Swift.min(n, range.upperBound)
        let base = unsafe UnsafeMutableRawPointer(mutating: p) + start
        _ = unsafe madvise(base, end - start, MADV_DONTNEED)
    }

    /// The byte at `i` (precondition: in bounds).
    @inline(__always)
    public subscript(i: Int) -> UInt8 {
        precondition(i >= 0 && i < count, "ByteStore index out of range")
        switch backing {
        case .owned(let a): return a[i]
        case .mapped(let p, _): return unsafe p.load(fromByteOffset: i, as: UInt8.self)
        }
    }

    /// A view of `range` (precondition: within the store).
    public func slice(_ range: Range<Int>) -> ByteSlice {
        ByteSlice(store: self, range: range)
    }

    /// The whole store as a slice.
    public var all: ByteSlice { ByteSlice(store: self, range: 0..<count) }
}

/// A window into a ``ByteStore``: cheap to copy, keeps the store (and any mapping) alive.
public struct ByteSlice: Sendable {
    /// The underlying bytes.
    public let store: ByteStore
    /// Absolute range within `store`.
    public let range: Range<Int>

    /// Creates a window; `range` must lie inside the store.
    public init(store: ByteStore, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= store.count)
        self.store = store
        self.range = range
    }

    /// Wraps owned bytes.
    public init(_ bytes: [UInt8]) {
        let s = ByteStore(bytes)
        self.init(store: s, range: 0..<s.count)
    }

    /// Number of bytes in the window.
    public var count: Int { range.count }

    /// Byte `i` relative to the window start.
    @inline(__always)
    public subscript(i: Int) -> UInt8 {
        precondition(i >= 0 && i < range.count, "ByteSlice index out of range")
        return store[range.lowerBound + i]
    }

    /// A sub-window, relative offsets; `sub` must lie within this window.
    public func slice(_ sub: Range<Int>) -> ByteSlice {
        precondition(sub.lowerBound >= 0 && sub.upperBound <= range.count)
        return ByteSlice(
            store: store, range: (range.lowerBound + sub.lowerBound)..<(range.lowerBound + sub.upperBound))
    }

    /// Scoped access to the window's bytes; the pointer must not escape `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let r = range
        return try unsafe store.withUnsafeBytes { all in
            try unsafe body(UnsafeRawBufferPointer(rebasing: all[r]))
        }
    }

    /// Prefetches the window's pages (see ``ByteStore/prefetch(_:)``).
    public func prefetch() { store.prefetch(range) }

    /// Releases the window's resident pages (see ``ByteStore/releasePages(_:)``).
    public func releasePages() { store.releasePages(range) }

    /// Copies the window into an array.
    public func toArray() -> [UInt8] {
        unsafe withUnsafeBytes { unsafe [UInt8]($0) }
    }
}

extension ByteSlice: Equatable {
    /// Byte-wise equality of the two windows' contents.
    public static func == (a: ByteSlice, b: ByteSlice) -> Bool {
        guard a.count == b.count else { return false }
        return unsafe a.withUnsafeBytes { pa in
            unsafe b.withUnsafeBytes { pb in
                unsafe (a.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0)
            }
        }
    }
}
