//! The gradient of the peephole weights of [`LstmPeephole`](crate::mode::Mode::LstmPeephole),
//! from the gate gradients of every step, after the backward's time loop.

use super::spec::Spec;
use crate::buffer::zeros;
use crate::error::Result;
use crate::real::Real;

/// Gradient `(3H,)` of the peephole weights from the gate gradients `dgx (T, N,
/// 4H)` and the cell states `cells (T+1, N, H)`: `dp_i = sum da_i * c`, `dp_f =
/// sum da_f * c`, `dp_o = sum da_o * c'` over every step and row, summed in time
/// then batch order whatever the sharding (padded rows have zero gate gradients).
/// With the cell state's zoneout, `c'` is the cell's own update, `cells_new (T, N, H)`.
pub(super) fn peephole_grad<F: Real>(
    spec: &Spec<'_>,
    dgx: &[F],
    cells: &[F],
    cells_new: Option<&[F]>,
) -> Result<Vec<F>> {
    let (n, h) = (spec.dims.n, spec.dims.h);
    let mut dp = zeros::<F>(3 * h, "dw_peep")?;
    let (dpi, rest) = dp.split_at_mut(h);
    let (dpf, dpo) = rest.split_at_mut(h);
    for t in 0..spec.dims.t {
        let (prev, next) = (spec.prev_slot(t), spec.next_slot(t));
        let c_prev = &cells[prev * n * h..][..n * h];
        let c_next = match cells_new {
            Some(c) => &c[t * n * h..][..n * h],
            None => &cells[next * n * h..][..n * h],
        };
        let dg_t = &dgx[t * n * 4 * h..][..n * 4 * h];
        let rows = dg_t
            .chunks_exact(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact(h));
        for ((dg, cp), cn) in rows {
            let (di, rest) = dg.split_at(h);
            let (df, rest) = rest.split_at(h);
            let d_o = &rest[h..];
            for j in 0..h {
                dpi[j] += di[j] * cp[j];
                dpf[j] += df[j] * cp[j];
                dpo[j] += d_o[j] * cn[j];
            }
        }
    }
    Ok(dp)
}
