//! The input and weight gradients of the MUT cells after their time loop: the
//! weights have a block of `H` rows per gate they feed (`cells::mut_cells`),
//! so each block gets its own GEMM.

use super::backward::column_sums;
use super::spec::{CacheRef, Spec, Weights};
use crate::buffer::zeros;
use crate::cells::mut_cells;
use crate::error::Result;
use crate::linalg::{matmul_tiled, MatRef};
use crate::mode::Mode;
use crate::real::Real;
use crate::simd;

/// What [`mut_grads`] returns: `dx`, `dw_ih`, `dw_hh`, `db_ih`, `db_hh`.
pub(super) type MutGrads<F> = (Vec<F>, Vec<F>, Vec<F>, Option<Vec<F>>, Option<Vec<F>>);

/// The input and weight gradients of a MUT cell from the pre-activation
/// gradients `dgx (T*N, 3H)` = `d[z r n]`, block by block: each `H`-row block of
/// `w_ih` (`b_ih`) and `w_hh` (`b_hh`) gets the gradient of the gate it feeds
/// (`mut_cells::ih_gates`, `hh_gates`), times what it multiplies: `x`, `h_prev`,
/// `r * h_prev` (the cache's `hn`) or, for MUT3's `W_hz`, `tanh(h_prev)`.
pub(super) fn mut_grads<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    w: &Weights<'_, F>,
    cache: &CacheRef<'_, F>,
    dgx: &[F],
) -> Result<MutGrads<F>> {
    let mode = spec.mode;
    let (t_len, n, d, h) = (spec.dims.t, spec.dims.n, spec.dims.d, spec.dims.h);
    let (rows, gh, nh) = (t_len * n, spec.gh(), n * h);
    let block = |g: usize| MatRef::strided(&dgx[g * h..], rows, h, gh, 1); // (T*N, H)
    let x_m = MatRef::row_major(x, rows, d);
    let mut dx = zeros::<F>(rows * d, "dx")?;
    let mut dw_ih = zeros::<F>(spec.ih_rows() * d, "dw_ih")?;
    for (b, &g) in mut_cells::ih_gates(mode).iter().enumerate() {
        let w_b = MatRef::row_major(&w.w_ih[b * h * d..], h, d); // (H, D)
        matmul_tiled(&mut dx, block(g), w_b, b > 0);
        matmul_tiled(&mut dw_ih[b * h * d..][..h * d], block(g).t(), x_m, false);
    }
    mut_cells::input_backward(simd::best_level(), h, mode, dgx, x, &mut dx);
    // The states each step read, in time order: slots 0..T forward, 1..T+1 reverse.
    let first_prev = if spec.reverse { 1 } else { 0 };
    let h_prevs = &cache.states[first_prev * nh..][..rows * h]; // (T*N, H)
    let tanh_h = if mode == Mode::Mut3 {
        let mut th = zeros::<F>(rows * h, "dw_hh")?;
        mut_cells::tanh_step(simd::best_level(), h_prevs, &mut th);
        th
    } else {
        Vec::new()
    };
    let rh = cache.hn.expect("checked by check_cache"); // (T*N, H)
    let mut dw_hh = zeros::<F>(spec.hh_rows() * h, "dw_hh")?;
    for (b, &g) in mut_cells::hh_gates(mode).iter().enumerate() {
        let src = match g {
            mut_cells::N => rh,
            mut_cells::Z if mode == Mode::Mut3 => &tanh_h,
            _ => h_prevs,
        };
        let src = MatRef::row_major(src, rows, h);
        matmul_tiled(&mut dw_hh[b * h * h..][..h * h], block(g).t(), src, false);
    }
    let (db_ih, db_hh) = if w.b_ih.is_some() {
        let mut sums = zeros::<F>(gh, "db_ih")?; // (3H,) per gate
        column_sums(dgx, gh, &mut sums);
        let pick = |gates: &[usize]| -> Vec<F> {
            gates
                .iter()
                .flat_map(|&g| sums[g * h..(g + 1) * h].iter().copied())
                .collect()
        };
        (
            Some(pick(mut_cells::ih_gates(mode))),
            Some(pick(mut_cells::hh_gates(mode))),
        )
    } else {
        (None, None)
    };
    Ok((dx, dw_ih, dw_hh, db_ih, db_hh))
}
