import TestSupport
import Testing

@testable import Tensors

@Suite struct StoredTensorTests {
    func storage(_ n: Int) -> ByteSlice { Tensor(floats: (0..<n).map(Float.init), shape: [n]).data }

    @Test func transposedViewMaterialisesInLogicalOrder() throws {
        // base = arange(12).view(3, 4); base.t() -> size (4, 3), stride (1, 4)
        let t = try StoredTensor(
            storage: storage(12), storageKey: "0", dtype: .float32, shape: [4, 3], strides: [1, 4],
            storageOffset: 0)
        #expect(!t.isContiguous)
        #expect(t.materialize().floats() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    }

    @Test func slicedViewWithOffset() throws {
        // base[1:, 2:] of a 3x4 -> offset 6, size (2, 2), stride (4, 1)
        let t = try StoredTensor(
            storage: storage(12), storageKey: "0", dtype: .float32, shape: [2, 2], strides: [4, 1],
            storageOffset: 6)
        #expect(t.materialize().floats() == [6, 7, 10, 11])
    }

    @Test func contiguousViewSharesBytes() throws {
        let s = storage(12)
        let t = try StoredTensor(
            storage: s, storageKey: "0", dtype: .float32, shape: [2, 3], strides: [3, 1], storageOffset: 3)
        let m = t.materialize()
        #expect(m.data.store === s.store)
        #expect(m.floats() == [3, 4, 5, 6, 7, 8])
    }

    @Test func viewPastTheStorageIsRejected() {
        #expect(throws: StoredTensor.ViewError.outOfBounds(lastByte: 56, storageBytes: 48)) {
            try StoredTensor(
                storage: storage(12), storageKey: "0", dtype: .float32, shape: [2, 2], strides: [4, 1],
                storageOffset: 8)
        }
        #expect(throws: StoredTensor.ViewError.self) {
            try StoredTensor(
                storage: storage(12), storageKey: "0", dtype: .float32, shape: [Int.max, 2],
                strides: [Int.max, 1], storageOffset: 0)
        }
    }

    @Test func emptyAndScalar() throws {
        let e = try StoredTensor(
            storage: ByteSlice([]), storageKey: "0", dtype: .float32, shape: [0], strides: [1], storageOffset: 0)
        #expect(e.materialize().elementCount == 0)
        let s = try StoredTensor(
            storage: storage(1), storageKey: "0", dtype: .float32, shape: [], strides: [], storageOffset: 0)
        #expect(s.materialize().floats() == [0])
    }
}
