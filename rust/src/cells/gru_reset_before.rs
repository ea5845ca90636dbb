//! GRU cell with the reset gate applied before the recurrent product (Cho et
//! al. 2014; Keras's `reset_after=False`), gates `r, z, n`:
//!
//! ```text
//! [xr xz xn] = W_ih x + b_ih + b_hh                (N, 3H), from the caller
//! [hr hz]    = W_hr|W_hz h                         (N, 2H), from the caller
//! r = sigmoid(xr + hr)   z = sigmoid(xz + hz)
//! hn = W_hn (r * h)                                (N, H), from the caller
//! n = tanh(xn + hn)
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The step therefore runs in two halves around the second product: `gates_step`
//! (r, z and `r * h`), then `update_step` (n and `h'`). The backward likewise:
//! `backward_update` (the gradients of the z and n pre-activations), then, once
//! the caller has formed `d(r * h) = dn_pre @ W_hn`, `backward_reset`. Since
//! every bias is additive, both biases are folded into the input projection.

use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// First half of the forward. `gates (N, 3H)`: input projection in, `[r z]`
    /// written over its first `2H` columns; `hg (N, 2H)` = `W_hr|W_hz h_prev`;
    /// `h_prev (N, H)`; writes `rh (N, H)` = `r * h_prev`.
    pub fn gates_step<F: Real>(h: usize, gates: &mut [F], hg: &[F], h_prev: &[F], rh: &mut [F]) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hg.chunks_exact(2 * h))
            .zip(h_prev.chunks_exact(h))
            .zip(rh.chunks_exact_mut(h));
        for (((g, hgr), hp), rh) in rows {
            let (r, rest) = g.split_at_mut(h); // (H,) each
            let z = &mut rest[..h];
            let (hr, hz) = hgr.split_at(h);
            gates_row(h, r, z, hr, hz, hp, rh);
        }
    }
}

multiversion! {
    /// Second half of the forward. `gates (N, 3H)`: `[r z xn]` in, `[r z n]`
    /// out; `hn (N, H)` = `W_hn (r * h_prev)`; `h_prev (N, H)`; writes `h_next (N, H)`.
    pub fn update_step<F: Real>(h: usize, gates: &mut [F], hn: &[F], h_prev: &[F], h_next: &mut [F]) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hn.chunks_exact(h))
            .zip(h_prev.chunks_exact(h))
            .zip(h_next.chunks_exact_mut(h));
        for (((g, hnr), hp), hx) in rows {
            let (z, n) = g[h..].split_at_mut(h); // (H,) each
            update_row(h, z, n, hnr, hp, hx);
        }
    }
}

multiversion! {
    /// First half of the backward. `gates (N, 3H)` = `[r z n]`, `h_prev (N, H)`,
    /// `dh (N, H)` gradient of `h'`. Writes the z and n blocks of `dgx (N, 3H)`
    /// (gradient of the input projection), the z block of `drz (N, 2H)`,
    /// `dn (N, H)` (a contiguous copy of the n block, for the product with
    /// `W_hn`) and `dh_direct (N, H)` = `z * dh`. Inactive rows: zeros, and
    /// `dh_direct = dh`.
    pub fn backward_update<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        h_prev: &[F],
        dh: &[F],
        dgx: &mut [F],
        drz: &mut [F],
        dn: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(h_prev.chunks_exact(h))
            .zip(dh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(drz.chunks_exact_mut(2 * h))
            .zip(dn.chunks_exact_mut(h))
            .zip(dh_direct.chunks_exact_mut(h));
        for (((((((g, hp), dhr), dx), drz), dn), dd), &on) in rows.zip(active) {
            if !on {
                dx.fill(F::ZERO);
                drz.fill(F::ZERO);
                dn.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (gz, gn) = g[h..].split_at(h); // (H,) each
            let (dxz, dxn) = dx[h..].split_at_mut(h);
            let dz2 = &mut drz[h..];
            update_back_row(h, gz, gn, hp, dhr, dxz, dxn, dz2, dn, dd);
        }
    }
}

multiversion! {
    /// Second half of the backward. `gates (N, 3H)` = `[r z n]`, `h_prev (N, H)`,
    /// `drh (N, H)` = `dn @ W_hn`, the gradient of `r * h_prev`. Writes the r
    /// blocks of `dgx (N, 3H)` and `drz (N, 2H)`, and adds `r * drh` to
    /// `dh_direct (N, H)`. Inactive rows: zero r gradient, `dh_direct` unchanged.
    pub fn backward_reset<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        h_prev: &[F],
        drh: &[F],
        dgx: &mut [F],
        drz: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(h_prev.chunks_exact(h))
            .zip(drh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(drz.chunks_exact_mut(2 * h))
            .zip(dh_direct.chunks_exact_mut(h));
        for ((((((g, hp), drh), dx), drz), dd), &on) in rows.zip(active) {
            if !on {
                dx[..h].fill(F::ZERO);
                drz[..h].fill(F::ZERO);
                continue;
            }
            reset_back_row(h, &g[..h], hp, drh, &mut dx[..h], &mut drz[..h], dd);
        }
    }
}

/// `r, z` in place over `xr, xz`, and `r * h_prev`, over one row of `H` units.
#[inline(always)]
fn gates_row<F: Real>(
    h: usize,
    r: &mut [F],
    z: &mut [F],
    hr: &[F],
    hz: &[F],
    hp: &[F],
    rh: &mut [F],
) {
    let (r, z, hr, hz) = (&mut r[..h], &mut z[..h], &hr[..h], &hz[..h]);
    let (hp, rh) = (&hp[..h], &mut rh[..h]);
    for j in 0..h {
        let rv = (r[j] + hr[j]).sigmoid_fast();
        (r[j], z[j]) = (rv, (z[j] + hz[j]).sigmoid_fast());
        rh[j] = rv * hp[j];
    }
}

/// `n` in place over `xn`, and `h'`, over one row.
#[inline(always)]
fn update_row<F: Real>(h: usize, z: &[F], n: &mut [F], hn: &[F], hp: &[F], hx: &mut [F]) {
    let (z, n, hn, hp, hx) = (&z[..h], &mut n[..h], &hn[..h], &hp[..h], &mut hx[..h]);
    for j in 0..h {
        let nv = (n[j] + hn[j]).tanh_fast();
        n[j] = nv;
        hx[j] = (F::ONE - z[j]) * nv + z[j] * hp[j];
    }
}

/// Gradients of the z and n pre-activations and the direct path, one row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update_back_row<F: Real>(
    h: usize,
    gz: &[F],
    gn: &[F],
    hp: &[F],
    dhr: &[F],
    dxz: &mut [F],
    dxn: &mut [F],
    dz2: &mut [F],
    dn: &mut [F],
    dd: &mut [F],
) {
    let (gz, gn, hp, dhr) = (&gz[..h], &gn[..h], &hp[..h], &dhr[..h]);
    let (dxz, dxn, dz2) = (&mut dxz[..h], &mut dxn[..h], &mut dz2[..h]);
    let (dn, dd) = (&mut dn[..h], &mut dd[..h]);
    for j in 0..h {
        let (zv, nv, dh) = (gz[j], gn[j], dhr[j]);
        let dn_pre = dh * (F::ONE - zv) * (F::ONE - nv * nv);
        let dz_pre = dh * (hp[j] - nv) * zv * (F::ONE - zv);
        (dxz[j], dxn[j], dz2[j], dn[j]) = (dz_pre, dn_pre, dz_pre, dn_pre);
        dd[j] = dh * zv;
    }
}

/// Gradient of the r pre-activation from `d(r * h_prev)`, one row.
#[inline(always)]
fn reset_back_row<F: Real>(
    h: usize,
    gr: &[F],
    hp: &[F],
    drh: &[F],
    dxr: &mut [F],
    dr2: &mut [F],
    dd: &mut [F],
) {
    let (gr, hp, drh) = (&gr[..h], &hp[..h], &drh[..h]);
    let (dxr, dr2, dd) = (&mut dxr[..h], &mut dr2[..h], &mut dd[..h]);
    for j in 0..h {
        let rv = gr[j];
        let dr_pre = drh[j] * hp[j] * rv * (F::ONE - rv);
        (dxr[j], dr2[j]) = (dr_pre, dr_pre);
        dd[j] += rv * drh[j];
    }
}
