import Dispatch
import Synchronization
import Tensors

/// Builds an ``InspectReport`` from a read ``Checkpoint``. Never prints.
public enum Inspector {
    /// What to include.
    public struct Options: Sendable {
        /// Compute statistics of every listed tensor (reads all their bytes).
        public var stats = false
        /// Keep only tensors whose name passes this test (`--filter`).
        public var filter: (@Sendable (String) -> Bool)?
        /// Creates options.
        public init(stats: Bool = false, filter: (@Sendable (String) -> Bool)? = nil) {
            self.stats = stats
            self.filter = filter
        }
    }

    /// Inspects `checkpoint`, read from `file` of `fileBytes` bytes.
    public static func inspect(
        _ checkpoint: Checkpoint, file: String, fileBytes: Int, options: Options = Options()
    ) -> InspectReport {
        let located = CheckpointTree.locate(checkpoint.root)
        let stateNames = located.map { Set($0.entries.map(\.name)) } ?? []
        let keep = options.filter ?? { _ in true }

        var rows: [InspectReport.TensorRow] = []
        var stored: [StoredTensor] = []
        for (name, t) in located?.entries ?? [] where keep(name) {
            rows.append(row(name, t))
            stored.append(t)
        }
        var other: [InspectReport.TensorRow] = []
        var otherStored: [StoredTensor] = []
        let prefix = located.map { $0.path.isEmpty ? "" : $0.path + "." } ?? ""
        for (path, t) in checkpoint.root.allTensors() {
            if located != nil, path.hasPrefix(prefix), stateNames.contains(String(path.dropFirst(prefix.count))) {
                continue
            }
            guard keep(path) else { continue }
            other.append(row(path, t))
            otherStored.append(t)
        }
        if options.stats {
            let all = stored + otherStored
            let stats = TensorStatisticsBatch.compute(all)
            for i in rows.indices { rows[i].stats = stats[i] }
            for i in other.indices { other[i].stats = stats[rows.count + i] }
        }
        let quantizers = QuantizerGrouping.groups(
            (located?.entries ?? []).filter { keep($0.name) })
        var report = InspectReport(
            file: file, fileBytes: fileBytes, format: checkpoint.format.rawValue,
            formatDescription: describe(checkpoint.format),
            facts: checkpoint.facts.map { InspectReport.Fact(key: $0.key, value: $0.value) },
            safety: safety(checkpoint), entries: CheckpointTree.entries(checkpoint.root, skipping: located?.path),
            stateDict: located.map {
                InspectReport.StateDictInfo(
                    path: $0.path, kind: $0.kind, commonPrefix: CheckpointTree.commonPrefix($0.entries.map(\.name)))
            },
            tensors: rows, otherTensors: other, quantizers: quantizers,
            totals: totals(rows + other, storages: stored + otherStored))
        report.packed = PackedSummary.of(checkpoint, fileBytes: fileBytes)
        return report
    }

    static func row(_ name: String, _ t: StoredTensor) -> InspectReport.TensorRow {
        InspectReport.TensorRow(
            name: name, dtype: t.dtype.rawValue, shape: t.shape, elements: t.elementCount,
            bytes: t.byteCount, storage: t.storageKey, contiguous: t.isContiguous,
            parameter: t.isParameter, requiresGrad: t.requiresGrad, stats: nil)
    }

    static func totals(_ rows: [InspectReport.TensorRow], storages: [StoredTensor]) -> InspectReport.Totals {
        var byType: [String: Int] = [:]
        for r in rows { byType[r.dtype, default: 0] += r.bytes }
        return InspectReport.Totals(
            tensors: rows.count, elements: rows.reduce(0) { $0 + $1.elements },
            bytes: rows.reduce(0) { $0 + $1.bytes }, bytesByDType: byType,
            storages: Set(storages.map(\.storageKey)).count)
    }

    static func safety(_ c: Checkpoint) -> InspectReport.Safety? {
        switch c.format {
        case .torchZip, .torchLegacy, .torchTar:
            let rejectedOps = c.facts.contains { $0.key == "weights_only rejects opcodes" }
            return InspectReport.Safety(
                weightsOnlyLoadable: c.unsafeGlobals.isEmpty && !rejectedOps && c.format != .torchTar,
                globals: c.globals, unsafeGlobals: c.unsafeGlobals)
        default: return nil
        }
    }

    /// Human name of a format.
    public static func describe(_ f: CheckpointFormat) -> String {
        switch f {
        case .torchZip: return "PyTorch checkpoint, zip format (torch >= 1.6)"
        case .torchLegacy: return "PyTorch checkpoint, legacy format (torch 0.1.10 - 1.5)"
        case .torchTar: return "PyTorch checkpoint, tar format (torch <= 0.1.9)"
        case .safetensors: return "safetensors"
        case .npy: return "NumPy .npy array"
        case .npz: return "NumPy .npz archive"
        case .bnnpack: return "bit-packed model (bnnpack 1: safetensors with U8 bit planes and a manifest)"
        case .onnx: return "ONNX model (protobuf ModelProto; initializers listed as tensors)"
        }
    }
}

/// Statistics for many tensors, spread over two cores (largest tensors first).
enum TensorStatisticsBatch {
    static func compute(_ tensors: [StoredTensor]) -> [TensorStatistics] {
        let order = tensors.indices.sorted { tensors[$0].byteCount > tensors[$1].byteCount }
        let results = Mutex([TensorStatistics](repeating: TensorStatistics(), count: tensors.count))
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: min(2, max(1, tensors.count))) { _ in
            while true {
                let k = next.add(1, ordering: .relaxed).oldValue
                guard k < order.count else { return }
                let i = order[k]
                tensors[i].storage.prefetch()
                let s = TensorStatistics.of(tensors[i].materialize())
                results.withLock { $0[i] = s }
            }
        }
        return results.withLock { $0 }
    }
}
