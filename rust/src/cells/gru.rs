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
//! (the reset gate multiplies it, so the backward needs it). Inner loops run
//! over slices cut to exactly `H`, so they vectorise.

use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// Forward. `gates (N, 3H)`: input projection in, `[r z n]` out;
    /// `hg (N, 3H)` recurrent projection; `h_prev (N, H)`; writes `hn (N, H)`
    /// and `h_next (N, H)`.
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
        for ((((g, hgr), hp), hn_out), hx) in rows {
            let (r, rest) = g.split_at_mut(h); // (H,) each
            let (z, n) = rest.split_at_mut(h);
            let (hr, rest) = hgr.split_at(h);
            let (hz, hnn) = rest.split_at(h);
            forward_row(h, r, z, n, hr, hz, hnn, hp, hn_out, hx);
        }
    }
}

multiversion! {
    /// Backward. `gates (N, 3H)` = `[r z n]`, `hn (N, H)`, `h_prev (N, H)`,
    /// `dh (N, H)` gradient of `h'`. Writes `dgx (N, 3H)` (gradient of the input
    /// projection), `dgh (N, 3H)` (of the recurrent projection) and
    /// `dh_direct (N, H)` = `z * dh` for active rows (`dh` for inactive ones).
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
            let (gr, rest) = g.split_at(h); // (H,) each
            let (gz, gn) = rest.split_at(h);
            let (dxr, rest) = dx.split_at_mut(h);
            let (dxz, dxn) = rest.split_at_mut(h);
            let (dhgr, rest) = dhg.split_at_mut(h);
            let (dhgz, dhgn) = rest.split_at_mut(h);
            backward_row(h, gr, gz, gn, hnr, hp, dhr, dxr, dxz, dxn, dhgr, dhgz, dhgn, dd);
        }
    }
}

/// One unit of the forward, from the input projections `xr, xz, xn`, the
/// recurrent projections `hr, hz, hn` (with their biases) and the previous
/// state `h_prev`: returns the activated gates `[r z n]` and `h'`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn unit<F: Real>(xr: F, xz: F, xn: F, hr: F, hz: F, hn: F, h_prev: F) -> ([F; 3], F) {
    let rv = (xr + hr).sigmoid_fast();
    let zv = (xz + hz).sigmoid_fast();
    let nv = (xn + rv * hn).tanh_fast();
    ([rv, zv, nv], (F::ONE - zv) * nv + zv * h_prev)
}

/// One row of the forward over `H` units. Each slice is its own argument (not
/// an array of slices) so LLVM knows they do not overlap and vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_row<F: Real>(
    h: usize,
    r: &mut [F],
    z: &mut [F],
    n: &mut [F],
    hr: &[F],
    hz: &[F],
    hnn: &[F],
    hp: &[F],
    hn_out: &mut [F],
    hx: &mut [F],
) {
    let (r, z, n) = (&mut r[..h], &mut z[..h], &mut n[..h]);
    let (hr, hz, hnn) = (&hr[..h], &hz[..h], &hnn[..h]);
    let (hp, hn_out, hx) = (&hp[..h], &mut hn_out[..h], &mut hx[..h]);
    for j in 0..h {
        let (gates, h_next) = unit(r[j], z[j], n[j], hr[j], hz[j], hnn[j], hp[j]);
        [r[j], z[j], n[j]] = gates;
        hn_out[j] = hnn[j];
        hx[j] = h_next;
    }
}

/// One row of the backward: gates `[r z n]`, `hn`, `h_prev`, `dh`, and the
/// input-side and recurrent-side gate gradients, each `(H,)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<F: Real>(
    h: usize,
    gr: &[F],
    gz: &[F],
    gn: &[F],
    hnr: &[F],
    hp: &[F],
    dhr: &[F],
    dxr: &mut [F],
    dxz: &mut [F],
    dxn: &mut [F],
    dhgr: &mut [F],
    dhgz: &mut [F],
    dhgn: &mut [F],
    dd: &mut [F],
) {
    let (gr, gz, gn) = (&gr[..h], &gz[..h], &gn[..h]);
    let (hnr, hp, dhr) = (&hnr[..h], &hp[..h], &dhr[..h]);
    let (dxr, dxz, dxn) = (&mut dxr[..h], &mut dxz[..h], &mut dxn[..h]);
    let (dhgr, dhgz, dhgn) = (&mut dhgr[..h], &mut dhgz[..h], &mut dhgn[..h]);
    let dd = &mut dd[..h];
    for j in 0..h {
        let (rv, zv, nv, dh) = (gr[j], gz[j], gn[j], dhr[j]);
        let dn_pre = dh * (F::ONE - zv) * (F::ONE - nv * nv);
        let dz_pre = dh * (hp[j] - nv) * zv * (F::ONE - zv);
        let dr_pre = dn_pre * hnr[j] * rv * (F::ONE - rv);
        (dxr[j], dxz[j], dxn[j]) = (dr_pre, dz_pre, dn_pre);
        (dhgr[j], dhgz[j], dhgn[j]) = (dr_pre, dz_pre, dn_pre * rv);
        dd[j] = dh * zv;
    }
}
