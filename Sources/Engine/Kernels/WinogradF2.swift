/// The F(2x2, 3x3) transforms of ``Winograd`` (4x4 input tiles, 2x2 output tiles):
/// ```
/// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
/// G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
/// A^T = [1 1 1 0; 0 1 -1 -1]
/// ```
/// The transforms only use 1/2 and ±1, so they add almost no rounding of their own.
extension Winograd {
    /// F(2x2)'s `G` (4 x 3).
    static let gF2: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
}
