//! Every pointwise kernel compiled for each SIMD level gives bitwise the result
//! of its scalar twin, at vector lengths around the SIMD widths (rows of
//! `H` = 1, 7, 8, 9, 33; with `N` = 0 rows the loops see length 0).

use super::{gru, gru_reset_before, lstm, lstm_cifg, lstm_peephole, mut_cells, rnn};
use crate::mode::Mode;
use crate::real::Real;
use crate::simd::Level;

const LEVELS: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];
const LENGTHS: [usize; 5] = [1, 7, 8, 9, 33];

fn values<F: Real>(len: usize, seed: u64, scale: f64) -> Vec<F> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            F::from_f64(((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale)
        })
        .collect()
}

/// Run `f` at every supported level and assert all outputs equal the scalar one.
fn same_at_all_levels<F: Real>(f: impl Fn(Level) -> Vec<Vec<F>>) {
    let scalar = f(Level::Scalar);
    for level in LEVELS.into_iter().filter(|l| l.supported()) {
        let got = f(level);
        for (a, b) in got.iter().zip(&scalar) {
            let same = a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits());
            assert!(same, "{} differs from scalar", level.name());
        }
    }
}

fn check_all<F: Real>() {
    for h in LENGTHS {
        for n in [0usize, 1, 3] {
            let active: Vec<bool> = (0..n).map(|b| b != 1).collect();
            for relu in [false, true] {
                same_at_all_levels::<F>(|level| {
                    let mut g = values::<F>(n * h, 1, 3.0);
                    let mut hn = vec![F::ZERO; n * h];
                    rnn::forward_step(level, relu, &mut g, &mut hn);
                    let (mut dg, mut dd) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                    let dh = values::<F>(n * h, 2, 1.0);
                    rnn::backward_step(level, h, relu, &active, &g, &dh, &mut dg, &mut dd);
                    vec![g, hn, dg, dd]
                });
            }
            same_at_all_levels::<F>(|level| {
                let mut g = values::<F>(n * 4 * h, 3, 3.0);
                let cp = values::<F>(n * h, 4, 1.0);
                let (mut cn, mut hn) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                lstm::forward_step(level, h, &mut g, &cp, &mut cn, &mut hn);
                let dh = values::<F>(n * h, 5, 1.0);
                let mut dc = values::<F>(n * h, 6, 1.0);
                let (mut dg, mut dd) = (vec![F::ZERO; n * 4 * h], vec![F::ZERO; n * h]);
                lstm::backward_step(
                    level, h, &active, &g, &cp, &cn, &dh, &mut dc, &mut dg, &mut dd,
                );
                vec![g, cn, hn, dc, dg, dd]
            });
            same_at_all_levels::<F>(|level| {
                let mut g = values::<F>(n * 3 * h, 17, 3.0);
                let cp = values::<F>(n * h, 18, 1.0);
                let (mut cn, mut hn) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                lstm_cifg::forward_step(level, h, &mut g, &cp, &mut cn, &mut hn);
                let dh = values::<F>(n * h, 19, 1.0);
                let mut dc = values::<F>(n * h, 20, 1.0);
                let (mut dg, mut dd) = (vec![F::ZERO; n * 3 * h], vec![F::ZERO; n * h]);
                lstm_cifg::backward_step(
                    level, h, &active, &g, &cp, &cn, &dh, &mut dc, &mut dg, &mut dd,
                );
                vec![g, cn, hn, dc, dg, dd]
            });
            same_at_all_levels::<F>(|level| {
                let mut g = values::<F>(n * 4 * h, 21, 3.0);
                let p = values::<F>(3 * h, 22, 1.0);
                let cp = values::<F>(n * h, 23, 1.0);
                let (mut cn, mut hn) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                lstm_peephole::forward_step(level, h, &mut g, &p, &cp, &mut cn, &mut hn);
                let dh = values::<F>(n * h, 24, 1.0);
                let mut dc = values::<F>(n * h, 25, 1.0);
                let (mut dg, mut dd) = (vec![F::ZERO; n * 4 * h], vec![F::ZERO; n * h]);
                lstm_peephole::backward_step(
                    level, h, &active, &g, &p, &cp, &cn, &dh, &mut dc, &mut dg, &mut dd,
                );
                vec![g, cn, hn, dc, dg, dd]
            });
            same_at_all_levels::<F>(|level| {
                let mut g = values::<F>(n * 3 * h, 7, 3.0);
                let hg = values::<F>(n * 3 * h, 8, 2.0);
                let hp = values::<F>(n * h, 9, 1.0);
                let (mut hn, mut hx) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                gru::forward_step(level, h, &mut g, &hg, &hp, &mut hn, &mut hx);
                let dh = values::<F>(n * h, 10, 1.0);
                let (mut dgx, mut dgh) = (vec![F::ZERO; n * 3 * h], vec![F::ZERO; n * 3 * h]);
                let mut dd = vec![F::ZERO; n * h];
                gru::backward_step(
                    level, h, &active, &g, &hn, &hp, &dh, &mut dgx, &mut dgh, &mut dd,
                );
                vec![g, hn, hx, dgx, dgh, dd]
            });
            same_at_all_levels::<F>(|level| {
                let mut g = values::<F>(n * 3 * h, 11, 3.0);
                let hg = values::<F>(n * 2 * h, 12, 2.0);
                let hp = values::<F>(n * h, 13, 1.0);
                let hn = values::<F>(n * h, 14, 2.0);
                let (mut rh, mut hx) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                gru_reset_before::gates_step(level, h, &mut g, &hg, &hp, &mut rh);
                gru_reset_before::update_step(level, h, &mut g, &hn, &hp, &mut hx);
                let dh = values::<F>(n * h, 15, 1.0);
                let drh = values::<F>(n * h, 16, 1.0);
                let mut dgx = vec![F::ZERO; n * 3 * h];
                let mut drz = vec![F::ZERO; n * 2 * h];
                let (mut dn, mut dd) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                gru_reset_before::backward_update(
                    level, h, &active, &g, &hp, &dh, &mut dgx, &mut drz, &mut dn, &mut dd,
                );
                gru_reset_before::backward_reset(
                    level, h, &active, &g, &hp, &drh, &mut dgx, &mut drz, &mut dd,
                );
                vec![g, rh, hx, dgx, drz, dn, dd]
            });
            for mode in [Mode::Mut1, Mode::Mut2, Mode::Mut3] {
                same_at_all_levels::<F>(|level| {
                    let ih = mode.ih_blocks() * h;
                    let proj = values::<F>(n * ih, 26, 2.0);
                    let x = values::<F>(n * h, 27, 2.0);
                    let bias = values::<F>(3 * h, 28, 0.5);
                    let mut g = vec![F::ZERO; n * 3 * h];
                    mut_cells::input_step(level, h, h, mode, &proj, &x, &bias, &mut g);
                    let hz = if mode == Mode::Mut1 {
                        Vec::new()
                    } else {
                        values::<F>(n * h, 29, 2.0)
                    };
                    let hr = values::<F>(n * h, 30, 2.0);
                    let hp = values::<F>(n * h, 31, 1.0);
                    let hn = values::<F>(n * h, 32, 2.0);
                    let (mut rh, mut hx) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                    mut_cells::gates_step(level, h, &mut g, &hz, &hr, &hp, &mut rh);
                    mut_cells::update_step(level, h, &mut g, &hn, &hp, &mut hx);
                    let dh = values::<F>(n * h, 33, 1.0);
                    let drh = values::<F>(n * h, 34, 1.0);
                    let mut dgx = vec![F::ZERO; n * 3 * h];
                    let (mut dz, mut dn) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                    let (mut dr, mut dd) = (vec![F::ZERO; n * h], vec![F::ZERO; n * h]);
                    mut_cells::backward_update(
                        level, h, &active, &g, &hp, &dh, &mut dgx, &mut dz, &mut dn, &mut dd,
                    );
                    mut_cells::backward_reset(
                        level, h, &active, &g, &hp, &drh, &mut dgx, &mut dr, &mut dd,
                    );
                    let mut dx = values::<F>(n * h, 35, 1.0);
                    mut_cells::input_backward(level, h, mode, &dgx, &x, &mut dx);
                    let mut th = vec![F::ZERO; n * h];
                    mut_cells::tanh_step(level, &hp, &mut th);
                    let mut acc = values::<F>(n * h, 36, 1.0);
                    mut_cells::tanh_backward(level, &hp, &dh, &mut acc);
                    vec![g, rh, hx, dgx, dz, dn, dr, dd, dx, th, acc]
                });
            }
        }
    }
}

#[test]
fn simd_levels_match_scalar_f32() {
    check_all::<f32>();
}

#[test]
fn simd_levels_match_scalar_f64() {
    check_all::<f64>();
}

/// The per-unit steps (the ones the sequence kernels, the decoder and the
/// min-char-rnn step share) in `f64` against the equations written with the
/// library `tanh` and `exp`.
#[test]
fn unit_steps_follow_the_equations_in_f64() {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1.0);
    let xs = values::<f64>(7 * 64, 11, 6.0);
    for v in xs.chunks_exact(7) {
        let (a, b, c, d, e, f, g) = (v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        assert!(close(rnn::unit(false, a), a.tanh()));
        assert_eq!(rnn::unit(true, a), a.max(0.0));
        assert!(close(
            rnn::unit_grad(false, a.tanh(), b),
            b * (1.0 - a.tanh().powi(2))
        ));
        assert_eq!(rnn::unit_grad(true, a, b), if a > 0.0 { b } else { 0.0 });

        let u = lstm::unit(a, b, c, d, e);
        let (i, fg, gg, o) = (sig(a), sig(b), c.tanh(), sig(d));
        let cn = fg * e + i * gg;
        for (got, want) in u.gates.iter().zip([i, fg, gg, o]) {
            assert!(close(*got, want));
        }
        assert!(close(u.c, cn) && close(u.h, o * cn.tanh()));

        let ([r, z, n], hn) = gru::unit(a, b, c, d, e, f, g);
        let (rw, zw) = (sig(a + d), sig(b + e));
        let nw = (c + rw * f).tanh();
        assert!(close(r, rw) && close(z, zw) && close(n, nw));
        assert!(close(hn, (1.0 - zw) * nw + zw * g));
    }
}

/// One MUT step in `f64` against the paper's equations written with the
/// library `tanh` and `exp` (MUT3, whose `z` sees `tanh(h)`, and MUT1, whose
/// `n` adds `tanh(x)`).
#[test]
fn mut_steps_follow_the_equations_in_f64() {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1.0);
    let h = 9;
    let (xz, xr, xn) = (
        values::<f64>(h, 40, 3.0),
        values::<f64>(h, 41, 3.0),
        values(h, 42, 3.0),
    );
    let (hz, hr, hn) = (
        values::<f64>(h, 43, 3.0),
        values::<f64>(h, 44, 3.0),
        values(h, 45, 3.0),
    );
    let (x, hp) = (values::<f64>(h, 46, 2.0), values::<f64>(h, 47, 1.0));
    let proj = [xz.clone(), xr.clone(), xn.clone()].concat();
    for mode in [Mode::Mut1, Mode::Mut3] {
        let mut g = vec![0.0; 3 * h];
        let proj = if mode == Mode::Mut1 {
            &proj[..2 * h]
        } else {
            &proj[..]
        };
        mut_cells::input_step(Level::Scalar, h, h, mode, proj, &x, &[], &mut g);
        let hz = if mode == Mode::Mut1 {
            Vec::new()
        } else {
            hz.clone()
        };
        let mut rh = vec![0.0; h];
        mut_cells::gates_step(Level::Scalar, h, &mut g, &hz, &hr, &hp, &mut rh);
        let mut hx = vec![0.0; h];
        mut_cells::update_step(Level::Scalar, h, &mut g, &hn, &hp, &mut hx);
        for j in 0..h {
            let z = sig(xz[j] + hz.get(j).copied().unwrap_or(0.0));
            let r = sig(xr[j] + hr[j]);
            let n_in = if mode == Mode::Mut1 {
                x[j].tanh()
            } else {
                xn[j]
            };
            let n = (n_in + hn[j]).tanh();
            assert!(close(g[j], z) && close(g[h + j], r) && close(g[2 * h + j], n));
            assert!(close(rh[j], r * hp[j]));
            assert!(close(hx[j], n * z + hp[j] * (1.0 - z)));
        }
    }
}
