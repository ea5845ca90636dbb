//! Elman cell: `h' = act(W_ih x + b_ih + W_hh h + b_hh)`, `act` = tanh or ReLU.
//!
//! The sequence loop has already summed both projections and both biases into
//! the `(N, H)` pre-activation buffer, so the step is only the activation. The
//! activation overwrites the pre-activation: the backward needs only `h'`
//! (`tanh' = 1 - h'^2`, `relu' = [h' > 0]`).

use crate::real::Real;
use crate::simd::multiversion;

/// One unit of the forward: the activation of the pre-activation `a`.
#[inline(always)]
pub fn unit<F: Real>(relu: bool, a: F) -> F {
    if relu {
        a.relu()
    } else {
        a.tanh_fast()
    }
}

/// One unit of the backward: the gradient of the pre-activation, from the
/// activation `a` and the gradient `dh` of the output.
#[inline(always)]
pub fn unit_grad<F: Real>(relu: bool, a: F, dh: F) -> F {
    let da = if relu {
        if a > F::ZERO {
            F::ONE
        } else {
            F::ZERO
        }
    } else {
        F::ONE - a * a
    };
    dh * da
}

multiversion! {
    /// Forward. `gates (N, H)`: pre-activations in, activations out;
    /// `h_next (N, H)` receives the activations.
    pub fn forward_step<F: Real>(relu: bool, gates: &mut [F], h_next: &mut [F]) {
        let len = gates.len().min(h_next.len());
        let (gates, h_next) = (&mut gates[..len], &mut h_next[..len]);
        for j in 0..len {
            let a = unit(relu, gates[j]);
            gates[j] = a;
            h_next[j] = a;
        }
    }
}

multiversion! {
    /// Backward. `gates (N, H)` activations from the forward, `dh (N, H)`
    /// gradient of `h'`; writes `dgates (N, H)` (gradient of the pre-activation)
    /// and `dh_direct (N, H)` (the part of the gradient of `h` that bypasses
    /// `W_hh`: zero for active rows, `dh` for inactive ones).
    pub fn backward_step<F: Real>(
        h: usize,
        relu: bool,
        active: &[bool],
        gates: &[F],
        dh: &[F],
        dgates: &mut [F],
        dh_direct: &mut [F],
    ) {
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
            let (a, dhr, dg) = (&a[..h], &dhr[..h], &mut dg[..h]);
            for j in 0..h {
                dg[j] = unit_grad(relu, a[j], dhr[j]);
            }
            dd.fill(F::ZERO);
        }
    }
}
