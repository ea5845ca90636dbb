//! Weights cut into panels for products with a narrow batch (a decoding step,
//! the recurrent product of a few sequences), and the product over a panel.
//!
//! A step of a batch of `n` rows (often one) is a matrix-vector product per
//! layer: it reads every weight once and does two flops per weight and row. At
//! that size the work is moving the weights, so the layout is chosen for it:
//! the `G*H` rows of a layer's `W` (gates stacked, `[i f g o]` for the LSTM) are
//! regrouped into *unit blocks* of `U` units, and block `b` stores, for every
//! input feature `k`, the `G*U` weights of its units' gates side by side:
//!
//! ```text
//! panel[b][k][g*U + u] = W[g*H + b*U + u, k]        (K, P) per block, P columns
//! ```
//!
//! One pass over a panel (contiguous memory) yields all gates of `U` units, so
//! the cell update follows at once from registers, with no gate buffer. `P` is
//! four 512-bit vectors (64 `f32` or 32 `f64`); `U = P / G`, and the columns past
//! `G*U` (and those of units past `H` in the last block) are zero.

use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;

pub mod cache;
pub mod narrow;
pub mod stored;

use stored::Stored;

pub(crate) use crate::simd::dispatch;

/// Run `group::<NR>(r0)` over `0..n` in groups of at most `MAXR` rows.
macro_rules! row_groups {
    ($n:expr, $maxr:expr, |$nr:ident, $r0:ident| $call:expr) => {{
        let n = $n;
        let mut $r0 = 0;
        while $r0 < n {
            let left = n - $r0;
            if $maxr >= 6 && left >= 6 {
                const $nr: usize = 6;
                $call;
                $r0 += 6;
            } else if $maxr >= 4 && left >= 4 {
                const $nr: usize = 4;
                $call;
                $r0 += 4;
            } else if $maxr >= 2 && left >= 2 {
                const $nr: usize = 2;
                $call;
                $r0 += 2;
            } else {
                const $nr: usize = 1;
                $call;
                $r0 += 1;
            }
        }
    }};
}

pub(crate) use row_groups;

/// Columns of a panel for `R`: 64 for `f32`, 32 for `f64`.
pub const fn width<R>() -> usize {
    256 / std::mem::size_of::<R>()
}

/// How `G*H` rows are grouped into panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Gates per unit `G`.
    pub gates: usize,
    /// Units `H`.
    pub units: usize,
    /// Units per block `U`.
    pub unit: usize,
    /// Blocks `ceil(H / U)`.
    pub blocks: usize,
    /// Columns per panel row `P`.
    pub width: usize,
}

impl Layout {
    pub fn new<R>(gates: usize, units: usize) -> Self {
        let width = width::<R>();
        let unit = width / gates;
        Self {
            gates,
            units,
            unit,
            blocks: units.div_ceil(unit),
            width,
        }
    }

    /// The units of block `b`: `b*U .. b*U + count`.
    pub fn block_units(&self, b: usize) -> (usize, usize) {
        let start = b * self.unit;
        (start, self.unit.min(self.units - start))
    }

    /// Elements of the panels of a `(G*H, K)` matrix: `blocks * K * P`.
    pub fn panel_len(&self, k: usize) -> usize {
        self.blocks * k * self.width
    }

    /// `w (G*H, K)` row-major, as panels `(blocks, K, P)`.
    pub fn pack<R: Real>(&self, w: &[R], k: usize) -> Vec<R> {
        let mut out = vec![R::ZERO; self.panel_len(k)];
        self.pack_into(&mut out, w, k);
        out
    }

    /// [`pack`](Self::pack) into `out (blocks, K, P)`, zeroed. Large
    /// matrices are packed block-parallel on the pool.
    pub fn pack_into<R: Real>(&self, out: &mut [R], w: &[R], k: usize) {
        assert_eq!(
            w.len(),
            self.gates * self.units * k,
            "pack: w must be (G*H, K)"
        );
        self.pack_strided_into(out, w, k, k);
    }

    /// [`pack_into`](Self::pack_into) from rows `ld` elements apart.
    pub fn pack_strided_into<R: Real>(&self, out: &mut [R], w: &[R], k: usize, ld: usize) {
        let rows = self.gates * self.units;
        assert!(
            ld >= k && (rows == 0 || k == 0 || (rows - 1) * ld + k <= w.len()),
            "pack: w must be (G*H, K) with rows ld apart"
        );
        assert_eq!(
            out.len(),
            self.panel_len(k),
            "pack: out must be (blocks, K, P)"
        );
        self.for_panels(out, k, |b, panel| {
            // A transpose per block and gate, in TILE x TILE tiles: TILE units
            // (rows of `w`, contiguous panel columns) by TILE features.
            let (start, count) = self.block_units(b);
            for g in 0..self.gates {
                for u0 in (0..count).step_by(TILE) {
                    let units = TILE.min(count - u0);
                    let (row0, col0) = (g * self.units + start + u0, g * self.unit + u0);
                    for k0 in (0..k).step_by(TILE) {
                        let src = &w[row0 * ld + k0..];
                        let dst = &mut panel[k0 * self.width + col0..];
                        transpose(src, ld, dst, self.width, units, TILE.min(k - k0));
                    }
                }
            }
        });
    }

    /// [`pack_into`](Self::pack_into) from `wt = W^T (K, G*H)` for one gate
    /// (`G = 1`), its rows `ld` elements apart: each panel row is then a
    /// contiguous run of `wt`.
    pub fn pack_transposed_into<R: Real>(&self, out: &mut [R], wt: &[R], k: usize, ld: usize) {
        assert_eq!(self.gates, 1, "pack_transposed_into: one gate");
        assert!(
            ld >= self.units && (k == 0 || (k - 1) * ld + self.units <= wt.len()),
            "pack_transposed_into: wt must be (K, H) with rows ld apart"
        );
        assert_eq!(
            out.len(),
            self.panel_len(k),
            "pack_transposed_into: out must be (blocks, K, P)"
        );
        self.for_panels(out, k, |b, panel| {
            let (start, count) = self.block_units(b);
            for kk in 0..k {
                panel[kk * self.width..][..count].copy_from_slice(&wt[kk * ld + start..][..count]);
            }
        });
    }

    /// `fill(b, panel)` for every block's panel `(K, P)` of `out`, spread over
    /// the pool for large matrices (each panel is written by one call).
    fn for_panels<R: Real>(&self, out: &mut [R], k: usize, fill: impl Fn(usize, &mut [R]) + Sync) {
        let len = k * self.width;
        let shared = SharedMut::new(out);
        parallel::for_block_ranges(self.blocks, self.blocks * len, |b0, b1| {
            for b in b0..b1 {
                // SAFETY: block ranges are disjoint, so each panel has one writer.
                fill(b, unsafe { shared.piece(b * len, len) });
            }
        });
    }

    /// `v (G*H,)` (a bias) as `(blocks, P)`, in panel column order.
    pub fn pack_vector<R: Real>(&self, v: &[R]) -> Vec<R> {
        self.pack(v, 1)
    }
}

/// Side of the tiles [`Layout::pack_into`] transposes.
const TILE: usize = 16;

/// `dst[i * ld_dst + u] = src[u * ld_src + i]` for `u < units`, `i < feats`
/// (each at most `TILE`). A full tile goes through a fixed-size array, so the
/// transpose itself has no bounds checks and compiles to register moves.
#[inline(always)]
fn transpose<R: Real>(
    src: &[R],
    ld_src: usize,
    dst: &mut [R],
    ld_dst: usize,
    units: usize,
    feats: usize,
) {
    if units < TILE || feats < TILE {
        for u in 0..units {
            for i in 0..feats {
                dst[i * ld_dst + u] = src[u * ld_src + i];
            }
        }
        return;
    }
    let mut tile = [[R::ZERO; TILE]; TILE];
    for (u, row) in tile.iter_mut().enumerate() {
        row.copy_from_slice(&src[u * ld_src..][..TILE]);
    }
    for i in 0..TILE {
        let out: &mut [R; TILE] = (&mut dst[i * ld_dst..][..TILE])
            .try_into()
            .expect("a slice of TILE elements");
        for (u, v) in out.iter_mut().enumerate() {
            *v = tile[u][i];
        }
    }
}

/// `a (rows, cols)`, row-major, transposed into a new `(cols, rows)` array, tile
/// by tile with the same kernel as the packing.
pub fn transposed<R: Real>(a: &[R], rows: usize, cols: usize) -> Vec<R> {
    assert_eq!(a.len(), rows * cols);
    let mut out = vec![R::ZERO; rows * cols];
    transposed_into(a, cols, rows, cols, &mut out);
    out
}

/// `out (cols, rows)` row-major `= a^T`, for `a (rows, cols)` whose rows are
/// `ld` elements apart.
pub fn transposed_into<R: Real>(a: &[R], ld: usize, rows: usize, cols: usize, out: &mut [R]) {
    transposed_into_rows(a, ld, rows, cols, out, rows);
}

/// [`transposed_into`] with the rows of `out` `ld_out >= rows` elements apart
/// (the elements between are left as they are).
pub fn transposed_into_rows<R: Real>(
    a: &[R],
    ld: usize,
    rows: usize,
    cols: usize,
    out: &mut [R],
    ld_out: usize,
) {
    assert!(ld >= cols && ld_out >= rows);
    assert!(cols == 0 || out.len() >= (cols - 1) * ld_out + rows);
    assert!(rows == 0 || cols == 0 || (rows - 1) * ld + cols <= a.len());
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            let (units, feats) = (TILE.min(rows - r0), TILE.min(cols - c0));
            transpose(
                &a[r0 * ld + c0..],
                ld,
                &mut out[c0 * ld_out + r0..],
                ld_out,
                units,
                feats,
            );
        }
    }
}

/// `a + x * w`, fused into one rounding when `FUSED` (the twins compiled with FMA).
#[inline(always)]
pub fn madd<R: Real, const FUSED: bool>(a: R, x: R, w: R) -> R {
    if FUSED {
        x.mul_add(w, a)
    } else {
        a + x * w
    }
}

/// `acc[r][j] += sum_k xs[r][k] * panel[k][j]` for `NR` rows at once: each panel
/// row is loaded (and widened to `R`, for a compressed panel: [`stored`]) once
/// for all `NR` rows; the accumulators stay in registers.
///
/// `panel` holds at least `K * P` elements, `K = xs[r].len()` for every `r`.
///
/// The columns go in passes of `Q` (`Q = P`: one pass, six rows of four
/// 512-bit vectors; `Q = P / 4` for AVX2's 16 registers, six rows of two
/// 256-bit vectors). Each sum runs over `k` in order, so the result is bitwise
/// the same for any `Q` and `NR`.
#[inline(always)]
pub fn accumulate<
    R: Real,
    E: Stored<R>,
    const P: usize,
    const Q: usize,
    const NR: usize,
    const FUSED: bool,
>(
    panel: &[E],
    scale: Option<&[R; P]>,
    xs: [&[R]; NR],
    acc: &mut [[R; P]; NR],
) {
    let k = xs[0].len();
    assert!(xs.iter().all(|x| x.len() == k) && panel.len() >= k * P && P % Q == 0);
    // One row streams the panel from memory (a decoding step): one pass, which
    // holds its P sums in registers at any level.
    if NR == 1 {
        let mut a = [acc[0]];
        sweep::<R, E, P, P, 1, FUSED>(panel, scale, 0, [xs[0]], &mut a);
        acc[0] = a[0];
        return;
    }
    for q0 in (0..P).step_by(Q) {
        let mut a: [[R; Q]; NR] =
            std::array::from_fn(|r| acc[r][q0..q0 + Q].try_into().expect("Q columns"));
        sweep::<R, E, P, Q, NR, FUSED>(panel, scale, q0, xs, &mut a);
        for r in 0..NR {
            acc[r][q0..q0 + Q].copy_from_slice(&a[r]);
        }
    }
}

/// `acc[r][j] += sum_k xs[r][k] * w[k][q0 + j]` for `j < Q`, where `w` is the
/// panel widened, times `scale[q0 + j]` when a scale is given (an int8 panel:
/// the dequantized weight, rounded as [`stored::dequantized`] rounds it).
#[inline(always)]
fn sweep<
    R: Real,
    E: Stored<R>,
    const P: usize,
    const Q: usize,
    const NR: usize,
    const FUSED: bool,
>(
    panel: &[E],
    scale: Option<&[R; P]>,
    q0: usize,
    xs: [&[R]; NR],
    acc: &mut [[R; Q]; NR],
) {
    let k = xs[0].len();
    let mut a = *acc;
    let rows = panel[..k * P].chunks_exact(P).enumerate();
    match scale {
        None => {
            for (kk, w) in rows {
                let w: &[E; Q] = w[q0..q0 + Q].try_into().expect("Q columns");
                let w: [R; Q] = std::array::from_fn(|j| w[j].widen());
                row_step::<R, Q, NR, FUSED>(&mut a, xs, kk, &w);
            }
        }
        Some(s) => {
            let s: [R; Q] = std::array::from_fn(|j| s[q0 + j]);
            for (kk, w) in rows {
                let w: &[E; Q] = w[q0..q0 + Q].try_into().expect("Q columns");
                let w: [R; Q] = std::array::from_fn(|j| w[j].widen() * s[j]);
                row_step::<R, Q, NR, FUSED>(&mut a, xs, kk, &w);
            }
        }
    }
    *acc = a;
}

/// `a[r][j] += xs[r][kk] * w[j]` for every row `r` and column `j`.
#[inline(always)]
fn row_step<R: Real, const Q: usize, const NR: usize, const FUSED: bool>(
    a: &mut [[R; Q]; NR],
    xs: [&[R]; NR],
    kk: usize,
    w: &[R; Q],
) {
    for r in 0..NR {
        // SAFETY: kk < k = xs[r].len() (asserted by the caller).
        let xv = unsafe { *xs[r].get_unchecked(kk) };
        for j in 0..Q {
            a[r][j] = madd::<R, FUSED>(a[r][j], xv, w[j]);
        }
    }
}

/// Rows of a matrix inside a slice, element `(r, k)` at `data[r * rs + k * cs]`:
/// the left operand of a panel product, read one element at a time.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a, R> {
    pub data: &'a [R],
    pub rs: usize,
    pub cs: usize,
}

/// `acc[r][j] += sum_k x(r0 + r, k0 + kk) * panel[kk][c0 + j]` over `kk < kl`,
/// for `NR` rows and the `Q` columns `c0..c0 + Q` of each panel row, with the
/// accumulators in registers: the whole row (`Q = P`, AVX-512: six rows of four
/// vectors) or a part of it, for register files that hold fewer accumulators
/// (AVX2: six rows of two vectors). Each sum runs over `k` in order, so the
/// result is bitwise the same for any `Q`, `NR` or split of `k` into calls.
///
/// `panel` holds at least `kl * P` elements (its rows `k0..k0 + kl`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn accumulate_cols<
    R: Real,
    const P: usize,
    const Q: usize,
    const NR: usize,
    const FUSED: bool,
>(
    panel: &[R],
    c0: usize,
    x: Rows<'_, R>,
    r0: usize,
    k0: usize,
    kl: usize,
    acc: &mut [[R; Q]; NR],
) {
    assert!(panel.len() >= kl * P && c0 + Q <= P);
    if kl == 0 {
        return;
    }
    let last = (r0 + NR - 1) * x.rs + (k0 + kl - 1) * x.cs;
    assert!(last < x.data.len(), "accumulate_cols: rows past the slice");
    let base: [usize; NR] = std::array::from_fn(|r| (r0 + r) * x.rs + k0 * x.cs);
    let mut a = *acc;
    for (kk, w) in panel[..kl * P].chunks_exact(P).enumerate() {
        let w: &[R; Q] = w[c0..c0 + Q].try_into().expect("Q columns");
        for r in 0..NR {
            // SAFETY: base[r] + kk * cs <= last < len (asserted above).
            let xv = unsafe { *x.data.get_unchecked(base[r] + kk * x.cs) };
            for j in 0..Q {
                a[r][j] = madd::<R, FUSED>(a[r][j], xv, w[j]);
            }
        }
    }
    *acc = a;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_matches_the_definition_at_every_size() {
        for (rows, cols) in [
            (1, 1),
            (1, 40),
            (40, 1),
            (15, 17),
            (16, 16),
            (33, 50),
            (64, 3),
        ] {
            let a: Vec<f64> = (0..rows * cols).map(|i| i as f64 * 0.5 - 3.0).collect();
            let t = transposed(&a, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], a[r * cols + c], "{rows}x{cols} at {r},{c}");
                }
            }
            // Rows of the result padded to ld_out, the padding untouched.
            let ld_out = rows.next_multiple_of(16) + 3;
            let mut padded = vec![7.5; cols * ld_out];
            transposed_into_rows(&a, cols, rows, cols, &mut padded, ld_out);
            for c in 0..cols {
                for r in 0..ld_out {
                    let want = if r < rows { a[r * cols + c] } else { 7.5 };
                    assert_eq!(
                        padded[c * ld_out + r],
                        want,
                        "{rows}x{cols} padded at {r},{c}"
                    );
                }
            }
        }
    }

    #[test]
    fn layouts_cover_every_unit_once() {
        for (g, h) in [
            (1, 1),
            (1, 100),
            (3, 5),
            (3, 64),
            (4, 16),
            (4, 17),
            (4, 512),
        ] {
            let l = Layout::new::<f32>(g, h);
            assert!(l.gates * l.unit <= l.width);
            let covered: usize = (0..l.blocks).map(|b| l.block_units(b).1).sum();
            assert_eq!(covered, h);
            let l64 = Layout::new::<f64>(g, h);
            assert_eq!(l64.width, 32);
        }
    }

    fn check_pack<R: Real>(g: usize, h: usize, k: usize) {
        let l = Layout::new::<R>(g, h);
        let w: Vec<R> = (0..g * h * k)
            .map(|i| R::from_f64(i as f64 + 1.0))
            .collect();
        let p = l.pack(&w, k);
        assert_eq!(p.len(), l.blocks * k * l.width);
        let mut seen = 0;
        for b in 0..l.blocks {
            for kk in 0..k {
                for col in 0..l.width {
                    let v = p[(b * k + kk) * l.width + col];
                    let (gate, u) = (col / l.unit, col % l.unit);
                    let unit = b * l.unit + u;
                    if gate < g && unit < h {
                        assert_eq!(v, w[(gate * h + unit) * k + kk], "{g} {h} {k}");
                        seen += 1;
                    } else {
                        assert_eq!(v, R::ZERO, "{g} {h} {k}");
                    }
                }
            }
        }
        assert_eq!(seen, w.len());
    }

    #[test]
    fn pack_places_each_weight_at_its_gate_and_unit() {
        // f64 (3, 23, 5): U = 10, blocks of 10, 10, 3 units, no full tile;
        // the others mix full 16 x 16 tiles with partial ones at both edges.
        for (g, h, k) in [
            (3, 23, 5),
            (4, 40, 37),
            (1, 100, 50),
            (3, 64, 33),
            (4, 70, 48),
        ] {
            check_pack::<f64>(g, h, k);
            check_pack::<f32>(g, h, k);
        }
    }

    #[test]
    fn accumulate_is_a_matrix_vector_product() {
        const P: usize = 8;
        let k = 7;
        let panel: Vec<f64> = (0..k * P).map(|i| (i as f64 * 0.37).sin()).collect();
        let x0: Vec<f64> = (0..k).map(|i| i as f64 - 3.0).collect();
        let x1: Vec<f64> = (0..k).map(|i| (i * i) as f64 * 0.1).collect();
        let mut acc = [[1.0; P]; 2];
        accumulate::<f64, f64, P, P, 2, true>(&panel, None, [&x0, &x1], &mut acc);
        let mut split = [[1.0; P]; 2];
        accumulate::<f64, f64, P, 2, 2, true>(&panel, None, [&x0, &x1], &mut split);
        assert_eq!(split, acc, "bitwise the same in passes of 2 columns");
        for (r, x) in [&x0, &x1].iter().enumerate() {
            for j in 0..P {
                let want: f64 = 1.0 + (0..k).map(|kk| x[kk] * panel[kk * P + j]).sum::<f64>();
                assert!((acc[r][j] - want).abs() < 1e-12);
            }
        }
    }
}
