import CKernels

extension PackedGemm {
    /// Whether whole 6x32 tiles run on the AVX-512 kernel (the default where the CPU has
    /// AVX-512F); `false` leaves the 6x16 AVX2 tiles only. Returns the previous setting.
    /// Process-wide: for tests comparing the two (they compute bit-identical sums).
    @discardableResult
    package static func setAVX512Tiles(_ on: Bool) -> Bool { qk_gemm_set_avx512(on ? 1 : 0) != 0 }
}
