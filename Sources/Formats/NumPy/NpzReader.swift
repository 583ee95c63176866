import Tensors

/// Reads NumPy `.npz` archives: a zip of `<name>.npy` members, stored (`np.savez`) or
/// deflated (`np.savez_compressed`).
///
/// The root is a dict in archive order: `name` (without `.npy`) → tensor. Stored members are
/// zero-copy windows into `bytes` (when their data is little-endian and C order); deflated
/// members are inflated and their CRC-32 checked. Members not ending in `.npy` are kept as
/// ``CheckpointValue/bytes(_:)`` under their full name, as `np.load` returns them.
public enum NpzReader {
    /// Reads the archive.
    ///
    /// - Parameter verifyCRC: also check the CRC-32 of stored members (reads every byte, so a
    ///   mapped file is paged in; deflated members are always checked).
    /// - Throws: ``FormatError`` from the zip layer or a member's npy header, with `entry` set
    ///   to the member name; `.duplicateName` when `a.npy` and `a` both exist.
    public static func read(_ bytes: ByteSlice, verifyCRC: Bool = false) throws -> Checkpoint {
        let zip = try ZipArchive(bytes)
        var dict = CheckpointDict()
        var seen = Set<String>()
        var deflated = 0
        for entry in zip.entries {
            if entry.name.hasSuffix("/") && entry.uncompressedSize == 0 { continue }  // directory
            let isNpy = entry.name.hasSuffix(".npy")
            let name = isNpy ? String(entry.name.dropLast(4)) : entry.name
            guard seen.insert(name).inserted else {
                throw FormatError(.duplicateName(name), entry: entry.name, tensor: name)
            }
            let value: CheckpointValue = try withContext(entry: entry.name, tensor: name) {
                let data = try zip.data(of: entry)
                if entry.method != 0 || verifyCRC {
                    let found = Deflate.crc32(data)
                    guard found == entry.crc32 else {
                        throw FormatError(.checksum(expected: entry.crc32, found: found))
                    }
                }
                guard isNpy else { return .bytes(data.toArray()) }
                return .tensor(try NpyReader.readStored(data, key: name).tensor)
            }
            if entry.method != 0 { deflated += 1 }
            dict.entries.append((.string(name), value))
        }
        let facts: [(key: String, value: String)] = [
            ("members", String(zip.entries.count)),
            ("deflated members", String(deflated)),
            (
                "zip64",
                zip.hasZip64EndRecord || zip.entries.contains { $0.usesZip64 } ? "yes" : "no"
            ),
        ]
        return Checkpoint(format: .npz, root: .dict(dict), facts: facts)
    }
}
