//! Elman cell: `h' = act(W_ih x + b_ih + W_hh h + b_hh)`, `act` = tanh or ReLU.
//!
//! The sequence loop has already summed both projections and both biases into
//! the `(N, H)` pre-activation buffer, so the step is only the activation. The
//! activation overwrites the pre-activation: the backward needs only `h'`
//! (`tanh' = 1 - h'^2`, `relu' = [h' > 0]`).

use crate::real::Real;
use crate::simd::{dispatch_at, Level};

/// Forward. `gates (N, H)`: pre-activations in, activations out;
/// `h_next (N, H)` receives the activations.
pub fn forward_step<F: Real>(level: Level, relu: bool, gates: &mut [F], h_next: &mut [F]) {
    dispatch_at(level, || {
        for (g, hn) in gates.iter_mut().zip(h_next.iter_mut()) {
            let a = if relu { g.relu() } else { g.tanh_fast() };
            *g = a;
            *hn = a;
        }
    })
}

/// Backward. `gates (N, H)` activations from the forward, `dh (N, H)` gradient of
/// `h'`; writes `dgates (N, H)` (gradient of the pre-activation) and
/// `dh_direct (N, H)` (the part of the gradient of `h` that bypasses `W_hh`:
/// zero for active rows, `dh` for inactive ones).
#[allow(clippy::too_many_arguments)]
pub fn backward_step<F: Real>(
    level: Level,
    h: usize,
    relu: bool,
    active: &[bool],
    gates: &[F],
    dh: &[F],
    dgates: &mut [F],
    dh_direct: &mut [F],
) {
    dispatch_at(level, || {
        let rows = gates
            .chunks_exact(h)
            .zip(dh.chunks_exact(h))
            .zip(dgates.chunks_exact_mut(h))
            .zip(dh_direct.chunks_exact_mut(h));
        for ((((a, dhr), dg), dd), &on) in rows.zip(active) {
            if !on {
                dg.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            for ((dg, &a), &d) in dg.iter_mut().zip(a).zip(dhr) {
                let da = if relu {
                    if a > F::ZERO {
                        F::ONE
                    } else {
                        F::ZERO
                    }
                } else {
                    F::ONE - a * a
                };
                *dg = d * da;
            }
            dd.fill(F::ZERO);
        }
    })
}
