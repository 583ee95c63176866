/// The F(4x4, 3x3) transforms of ``Winograd`` (6x6 input tiles, 4x4 output tiles;
/// interpolation points 0, ±1, ±2, ∞):
/// ```
/// B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
/// G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
/// A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
/// ```
/// 4x fewer multiplies than direct convolution, at the price of larger transform
/// coefficients: results differ from direct convolution by about 1e-6 of the accumulated
/// magnitude (F(2x2): about 1e-7).
extension Winograd {
    /// F(4x4)'s `G` (6 x 3).
    static let gF4: [[Double]] = [
        [1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1],
    ]
}
