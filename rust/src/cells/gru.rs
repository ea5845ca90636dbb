//! GRU cell in PyTorch's "reset after" form, gates `r, z, n`:
//!
//! ```text
//! [xr xz xn] = W_ih x + b_ih                       (N, 3H), from the caller
//! [hr hz hn] = W_hh h + b_hh                       (N, 3H), from the caller
//! r = sigmoid(xr + hr)   z = sigmoid(xz + hz)
//! n = tanh(xn + r * hn)
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The forward overwrites the input projection with `r, z, n` and keeps `hn`
//! (the reset gate multiplies it, so the backward needs it).

use crate::real::Real;

/// Forward. `gates (N, 3H)`: input projection in, `[r z n]` out; `hg (N, 3H)`
/// recurrent projection; `h_prev (N, H)`; writes `hn (N, H)` and `h_next (N, H)`.
pub fn forward_step<F: Real>(
    h: usize,
    gates: &mut [F],
    hg: &[F],
    h_prev: &[F],
    hn: &mut [F],
    h_next: &mut [F],
) {
    let rows = gates
        .chunks_exact_mut(3 * h)
        .zip(hg.chunks_exact(3 * h))
        .zip(h_prev.chunks_exact(h))
        .zip(hn.chunks_exact_mut(h))
        .zip(h_next.chunks_exact_mut(h));
    for ((((g, hgr), hp), hnr), hx) in rows {
        let (r, rest) = g.split_at_mut(h); // (H,) each
        let (z, n) = rest.split_at_mut(h);
        for j in 0..h {
            let rv = (r[j] + hgr[j]).sigmoid();
            let zv = (z[j] + hgr[h + j]).sigmoid();
            let hnv = hgr[2 * h + j];
            let nv = (n[j] + rv * hnv).tanh();
            r[j] = rv;
            z[j] = zv;
            n[j] = nv;
            hnr[j] = hnv;
            hx[j] = (F::ONE - zv) * nv + zv * hp[j];
        }
    }
}

/// Backward. `gates (N, 3H)` = `[r z n]`, `hn (N, H)`, `h_prev (N, H)`, `dh (N, H)`
/// gradient of `h'`. Writes `dgx (N, 3H)` (gradient of the input projection),
/// `dgh (N, 3H)` (of the recurrent projection) and `dh_direct (N, H)` = `z * dh`
/// for active rows (`dh` for inactive ones).
#[allow(clippy::too_many_arguments)]
pub fn backward_step<F: Real>(
    h: usize,
    active: &[bool],
    gates: &[F],
    hn: &[F],
    h_prev: &[F],
    dh: &[F],
    dgx: &mut [F],
    dgh: &mut [F],
    dh_direct: &mut [F],
) {
    let rows = gates
        .chunks_exact(3 * h)
        .zip(hn.chunks_exact(h))
        .zip(h_prev.chunks_exact(h))
        .zip(dh.chunks_exact(h))
        .zip(dgx.chunks_exact_mut(3 * h))
        .zip(dgh.chunks_exact_mut(3 * h))
        .zip(dh_direct.chunks_exact_mut(h));
    for (((((((g, hnr), hp), dhr), dx), dhg), dd), &on) in rows.zip(active) {
        if !on {
            dx.fill(F::ZERO);
            dhg.fill(F::ZERO);
            dd.copy_from_slice(dhr);
            continue;
        }
        for j in 0..h {
            let (rv, zv, nv) = (g[j], g[h + j], g[2 * h + j]);
            let dn_pre = dhr[j] * (F::ONE - zv) * (F::ONE - nv * nv);
            let dz_pre = dhr[j] * (hp[j] - nv) * zv * (F::ONE - zv);
            let dr_pre = dn_pre * hnr[j] * rv * (F::ONE - rv);
            dx[j] = dr_pre;
            dx[h + j] = dz_pre;
            dx[2 * h + j] = dn_pre;
            dhg[j] = dr_pre;
            dhg[h + j] = dz_pre;
            dhg[2 * h + j] = dn_pre * rv;
            dd[j] = dhr[j] * zv;
        }
    }
}
