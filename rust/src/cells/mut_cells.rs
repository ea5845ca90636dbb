//! The MUT cells of Jozefowicz, Zaremba & Sutskever (2015), "An Empirical
//! Exploration of Recurrent Network Architectures", gate buffer `[z r n]`:
//!
//! ```text
//! MUT1: z = sigm(W_xz x + b_z)
//!       r = sigm(W_xr x + W_hr h + b_r)
//!       h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)
//! MUT2: z = sigm(W_xz x + W_hz h + b_z)
//!       r = sigm(x + W_hr h + b_r)
//!       h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
//! MUT3: z = sigm(W_xz x + W_hz tanh(h) + b_z)
//!       r = sigm(W_xr x + W_hr h + b_r)
//!       h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
//! ```
//!
//! Weights (no unused rows; each block is `(H, D)` or `(H, H)`):
//!
//! ```text
//!        w_ih, b_ih                 w_hh, b_hh
//! MUT1   (2H, D) W_xz|W_xr          (2H, H) W_hr|W_hh
//! MUT2   (2H, D) W_xz|W_xh          (3H, H) W_hz|W_hr|W_hh
//! MUT3   (3H, D) W_xz|W_xr|W_xh     (3H, H) W_hz|W_hr|W_hh
//! ```
//!
//! Each bias block is added to its gate, so `b_z`, `b_r`, `b_h` are the sums of
//! the `b_ih` and `b_hh` blocks of that gate (as in PyTorch's GRU). MUT1 and
//! MUT2 add `x` itself (or `tanh(x)`), so they need `D == H`.
//!
//! As for the GRU with the reset before the product, each step runs in two
//! halves around the product with `W_hh`: [`gates_step`] (z, r and `r * h`,
//! from the caller's `W_hz f(h)` and `W_hr h`), then [`update_step`] (n and
//! `h'`, from `W_hh (r * h)`). The backward likewise: [`backward_update`],
//! then, once the caller has formed `d(r * h) = dn @ W_hh`, [`backward_reset`].

use super::gru_reset_before::{reset_back_row, update_back_row, update_row};
use crate::mode::Mode;
use crate::real::Real;
use crate::simd::multiversion;

/// Columns of the gate buffer `[z r n]`, in blocks of `H`.
pub const Z: usize = 0;
pub const R: usize = 1;
pub const N: usize = 2;

/// The gate each `H`-row block of `w_ih` and `b_ih` feeds, in row order.
pub fn ih_gates(mode: Mode) -> &'static [usize] {
    match mode {
        Mode::Mut1 => &[Z, R],
        Mode::Mut2 => &[Z, N],
        _ => &[Z, R, N],
    }
}

/// The gate each `H`-row block of `w_hh` and `b_hh` feeds, in row order. The
/// `R` block multiplies `h`, the `N` block `r * h`, and the `Z` block `h`
/// (MUT2) or `tanh(h)` (MUT3).
pub fn hh_gates(mode: Mode) -> &'static [usize] {
    match mode {
        Mode::Mut1 => &[R, N],
        _ => &[Z, R, N],
    }
}

/// `(3H,)` bias of the gate buffer: each block of `b_ih (IH,)` and `b_hh (HH,)`
/// added to its gate's columns.
pub fn gate_bias<F: Real>(mode: Mode, h: usize, b_ih: &[F], b_hh: &[F]) -> Vec<F> {
    let mut bias = vec![F::ZERO; 3 * h];
    let blocks = (ih_gates(mode).iter().zip(b_ih.chunks_exact(h)))
        .chain(hh_gates(mode).iter().zip(b_hh.chunks_exact(h)));
    for (&g, b) in blocks {
        for (o, &v) in bias[g * h..(g + 1) * h].iter_mut().zip(b) {
            *o += v;
        }
    }
    bias
}

multiversion! {
    /// The input side of every step at once (`d` is `D`). `proj (M, IH)` = `x @ w_ih^T` with
    /// its blocks in [`ih_gates`] order, `x (M, D)`, `bias (3H,)` or empty.
    /// Writes `gates (M, 3H)` = `[xz xr xn]`: each gate's projection block (zero
    /// without one), plus the bias, plus `tanh(x)` in `xn` (MUT1) or `x` in `xr`
    /// (MUT2).
    pub fn input_step<F: Real>(
        h: usize,
        d: usize,
        mode: Mode,
        proj: &[F],
        x: &[F],
        bias: &[F],
        gates: &mut [F],
    ) {
        let ih = ih_gates(mode);
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(proj.chunks_exact(ih.len() * h))
            .zip(x.chunks_exact(d));
        for ((g, p), xr) in rows {
            g.fill(F::ZERO);
            for (&gate, pb) in ih.iter().zip(p.chunks_exact(h)) {
                g[gate * h..(gate + 1) * h].copy_from_slice(pb);
            }
            if !bias.is_empty() {
                add_row(h * 3, g, bias);
            }
            match mode {
                Mode::Mut1 => add_tanh_row(h, &mut g[N * h..], xr),
                Mode::Mut2 => add_row(h, &mut g[R * h..], xr),
                _ => {}
            }
        }
    }
}

multiversion! {
    /// Gradient of the input terms that are not products, added to `dx (M, D)`
    /// from the pre-activation gradients `dgx (M, 3H)` and `x (M, D)`:
    /// `dxn * (1 - tanh(x)^2)` (MUT1) or `dxr` (MUT2). Other modes: nothing.
    pub fn input_backward<F: Real>(h: usize, mode: Mode, dgx: &[F], x: &[F], dx: &mut [F]) {
        if !mode.needs_square_input() {
            return;
        }
        let rows = dgx
            .chunks_exact(3 * h)
            .zip(x.chunks_exact(h))
            .zip(dx.chunks_exact_mut(h));
        for ((dg, xr), dxr) in rows {
            if mode == Mode::Mut1 {
                tanh_grad_row(h, &dg[N * h..], xr, dxr);
            } else {
                add_row(h, dxr, &dg[R * h..]);
            }
        }
    }
}

multiversion! {
    /// `out = tanh(a)`, elementwise (MUT3's `tanh(h)`).
    pub fn tanh_step<F: Real>(a: &[F], out: &mut [F]) {
        for (o, &v) in out.iter_mut().zip(a) {
            *o = v.tanh_fast();
        }
    }
}

multiversion! {
    /// `acc += d * (1 - tanh(a)^2)`, elementwise (MUT3's path through `tanh(h)`).
    pub fn tanh_backward<F: Real>(a: &[F], d: &[F], acc: &mut [F]) {
        let n = acc.len();
        tanh_grad_row(n, d, a, acc);
    }
}

multiversion! {
    /// First half of the forward. `gates (N, 3H)`: `[xz xr xn]` in, `[z r xn]`
    /// out; `hz (N, H)` = `W_hz h_prev` or `W_hz tanh(h_prev)`, empty for MUT1;
    /// `hr (N, H)` = `W_hr h_prev`; `h_prev (N, H)`; writes `rh (N, H)` = `r * h_prev`.
    pub fn gates_step<F: Real>(
        h: usize,
        gates: &mut [F],
        hz: &[F],
        hr: &[F],
        h_prev: &[F],
        rh: &mut [F],
    ) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hr.chunks_exact(h))
            .zip(h_prev.chunks_exact(h))
            .zip(rh.chunks_exact_mut(h))
            .enumerate();
        for (b, (((g, hrr), hp), rh)) in rows {
            let (z, rest) = g.split_at_mut(h); // (H,) each
            let r = &mut rest[..h];
            if hz.is_empty() {
                z_row(h, z);
            } else {
                z_rec_row(h, z, &hz[b * h..(b + 1) * h]);
            }
            r_row(h, r, hrr, hp, rh);
        }
    }
}

multiversion! {
    /// Second half of the forward. `gates (N, 3H)`: `[z r xn]` in, `[z r n]`
    /// out; `hn (N, H)` = `W_hh (r * h_prev)`; `h_prev (N, H)`; writes `h_next (N, H)`.
    pub fn update_step<F: Real>(h: usize, gates: &mut [F], hn: &[F], h_prev: &[F], h_next: &mut [F]) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hn.chunks_exact(h))
            .zip(h_prev.chunks_exact(h))
            .zip(h_next.chunks_exact_mut(h));
        for (((g, hnr), hp), hx) in rows {
            let (z, rest) = g.split_at_mut(h);
            let n = &mut rest[h..2 * h];
            update_row::<F, true>(h, z, n, hnr, hp, hx);
        }
    }
}

multiversion! {
    /// First half of the backward. `gates (N, 3H)` = `[z r n]`, `h_prev (N, H)`,
    /// `dh (N, H)` gradient of `h'`. Writes the z and n blocks of `dgx (N, 3H)`
    /// (gradients of the pre-activations), contiguous copies `dz (N, H)` and
    /// `dn (N, H)` (for the products with `W_hz` and `W_hh`) and `dh_direct (N, H)`
    /// = `(1 - z) * dh`. Inactive rows: zeros, and `dh_direct = dh`.
    pub fn backward_update<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        h_prev: &[F],
        dh: &[F],
        dgx: &mut [F],
        dz: &mut [F],
        dn: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(h_prev.chunks_exact(h))
            .zip(dh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(dz.chunks_exact_mut(h))
            .zip(dn.chunks_exact_mut(h))
            .zip(dh_direct.chunks_exact_mut(h));
        for (((((((g, hp), dhr), dx), dz), dn), dd), &on) in rows.zip(active) {
            if !on {
                dx.fill(F::ZERO);
                dz.fill(F::ZERO);
                dn.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (dxz, rest) = dx.split_at_mut(h);
            let dxn = &mut rest[h..2 * h];
            update_back_row::<F, true>(h, &g[..h], &g[2 * h..], hp, dhr, dxz, dxn, dz, dn, dd);
        }
    }
}

multiversion! {
    /// Second half of the backward. `gates (N, 3H)` = `[z r n]`, `h_prev (N, H)`,
    /// `drh (N, H)` = `dn @ W_hh`, the gradient of `r * h_prev`. Writes the r
    /// block of `dgx (N, 3H)` and a contiguous copy `dr (N, H)`, and adds
    /// `r * drh` to `dh_direct (N, H)`. Inactive rows: zero r gradient,
    /// `dh_direct` unchanged.
    pub fn backward_reset<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        h_prev: &[F],
        drh: &[F],
        dgx: &mut [F],
        dr: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(h_prev.chunks_exact(h))
            .zip(drh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(dr.chunks_exact_mut(h))
            .zip(dh_direct.chunks_exact_mut(h));
        for ((((((g, hp), drh), dx), dr), dd), &on) in rows.zip(active) {
            let dxr = &mut dx[h..2 * h];
            if !on {
                dxr.fill(F::ZERO);
                dr.fill(F::ZERO);
                continue;
            }
            reset_back_row(h, &g[h..2 * h], hp, drh, dxr, dr, dd);
        }
    }
}

/// `a += b` over one row of `len` units.
#[inline(always)]
fn add_row<F: Real>(len: usize, a: &mut [F], b: &[F]) {
    let (a, b) = (&mut a[..len], &b[..len]);
    for j in 0..len {
        a[j] += b[j];
    }
}

/// `a += tanh(x)` over one row.
#[inline(always)]
fn add_tanh_row<F: Real>(h: usize, a: &mut [F], x: &[F]) {
    let (a, x) = (&mut a[..h], &x[..h]);
    for j in 0..h {
        a[j] += x[j].tanh_fast();
    }
}

/// `acc += d * (1 - tanh(a)^2)` over one row.
#[inline(always)]
fn tanh_grad_row<F: Real>(h: usize, d: &[F], a: &[F], acc: &mut [F]) {
    let (d, a, acc) = (&d[..h], &a[..h], &mut acc[..h]);
    for j in 0..h {
        let t = a[j].tanh_fast();
        acc[j] += d[j] * (F::ONE - t * t);
    }
}

/// `z` in place over `xz`, without a recurrent term (MUT1).
#[inline(always)]
fn z_row<F: Real>(h: usize, z: &mut [F]) {
    let z = &mut z[..h];
    for v in z.iter_mut() {
        *v = v.sigmoid_fast();
    }
}

/// `z` in place over `xz`, with its recurrent term `hz`.
#[inline(always)]
fn z_rec_row<F: Real>(h: usize, z: &mut [F], hz: &[F]) {
    let (z, hz) = (&mut z[..h], &hz[..h]);
    for j in 0..h {
        z[j] = (z[j] + hz[j]).sigmoid_fast();
    }
}

/// `r` in place over `xr`, and `r * h_prev`, over one row.
#[inline(always)]
fn r_row<F: Real>(h: usize, r: &mut [F], hr: &[F], hp: &[F], rh: &mut [F]) {
    let (r, hr, hp, rh) = (&mut r[..h], &hr[..h], &hp[..h], &mut rh[..h]);
    for j in 0..h {
        let rv = (r[j] + hr[j]).sigmoid_fast();
        r[j] = rv;
        rh[j] = rv * hp[j];
    }
}
