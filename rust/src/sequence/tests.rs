//! Finite-difference checks of every gradient, and the error paths.

use super::*;
use crate::error::RnnError;
use crate::mode::Mode;
use crate::test_util::Lcg;

/// `None` for an empty (absent) array.
pub(super) fn opt<F>(v: &[F]) -> Option<&[F]> {
    if v.is_empty() {
        None
    } else {
        Some(v)
    }
}

/// The weights among a [`Problem`]'s arrays (in its order), or among a copy
/// of them in another float type ([`cast`]).
pub(super) fn weights_of<F>(a: &[Vec<F>]) -> Weights<'_, F> {
    Weights {
        w_ih: &a[3],
        w_hh: &a[4],
        b_ih: opt(&a[5]),
        b_hh: opt(&a[6]),
        w_peep: opt(&a[7]),
        w_hr: opt(&a[8]),
        w_ln: opt(&a[9]),
        b_ln: opt(&a[10]),
    }
}

/// `arrays` rounded to `F`.
pub(super) fn cast<F: crate::real::Real>(arrays: &[Vec<f64>]) -> Vec<Vec<F>> {
    arrays
        .iter()
        .map(|v| v.iter().map(|&x| F::from_f64(x)).collect())
        .collect()
}

pub(super) const MODES: [Mode; 12] = [
    Mode::RnnTanh,
    Mode::RnnRelu,
    Mode::Lstm,
    Mode::Gru,
    Mode::GruResetBefore,
    Mode::LstmCifg,
    Mode::LstmPeephole,
    Mode::LstmLayerNorm,
    Mode::GruLayerNorm,
    Mode::Mut1,
    Mode::Mut2,
    Mode::Mut3,
];

/// All inputs of one call, owned, so single entries can be perturbed.
#[derive(Clone)]
pub(super) struct Problem {
    pub(super) mode: Mode,
    pub(super) dims: Dims,
    pub(super) lengths: Option<Vec<usize>>,
    pub(super) reverse: bool,
    /// x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peep, w_hr, w_ln, b_ln (c0, biases,
    /// w_peep, w_hr, w_ln and b_ln may be empty = absent).
    pub(super) arrays: [Vec<f64>; 11],
    /// Weights of the scalar loss: on output, h_n, c_n.
    pub(super) r: [Vec<f64>; 3],
    /// Recurrent mask, zoneout of h, zoneout of c ([`Noise`]); empty = absent.
    pub(super) noise: [Vec<f64>; 3],
}

const NAMES: [&str; 11] = [
    "x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_peep", "w_hr", "w_ln", "b_ln",
];

impl Problem {
    pub(super) fn new(
        mode: Mode,
        dims: Dims,
        lengths: Option<Vec<usize>>,
        reverse: bool,
        bias: bool,
        seed: u64,
    ) -> Self {
        let mut rng = Lcg(seed);
        // MUT1 and MUT2 add x itself to a gate: their input size is H.
        let dims = if mode.needs_square_input() {
            Dims { d: dims.h, ..dims }
        } else {
            dims
        };
        let Dims { t, n, d, h, p } = dims;
        let hs = if p > 0 { p } else { h }; // width of h
        let (ih, hh) = (mode.ih_blocks() * h, mode.hh_blocks() * h);
        let cell = mode.has_cell_state();
        Self {
            mode,
            dims,
            lengths,
            reverse,
            arrays: [
                rng.vec(t * n * d, 1.0),
                rng.vec(n * hs, 0.5),
                if cell {
                    rng.vec(n * h, 0.5)
                } else {
                    Vec::new()
                },
                rng.vec(ih * d, 0.6),
                rng.vec(hh * hs, 0.6),
                if bias { rng.vec(ih, 0.3) } else { Vec::new() },
                if bias { rng.vec(hh, 0.3) } else { Vec::new() },
                if mode.has_peepholes() {
                    rng.vec(3 * h, 0.8)
                } else {
                    Vec::new()
                },
                rng.vec(p * h, 0.7),
                rng.vec(mode.layer_norm_blocks() * h, 0.3)
                    .iter()
                    .map(|v| 1.0 + v)
                    .collect(),
                rng.vec(mode.layer_norm_blocks() * h, 0.3),
            ],
            r: [
                rng.vec(t * n * hs, 1.0),
                rng.vec(n * hs, 1.0),
                rng.vec(n * h, 1.0),
            ],
            noise: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    /// The same problem with every mask its mode takes: a dropout mask of 0 and
    /// 2 (p = 1/2), zoneouts of 0, 1 and fractions.
    pub(super) fn with_noise(mut self, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        let Dims { t, n, h, .. } = self.dims;
        let mut pick = |len: usize, values: &[f64]| -> Vec<f64> {
            (0..len)
                .map(|_| {
                    let u = (rng.vec(1, 1.0)[0] + 1.0) / 2.0; // in [0, 1)
                    values[((u * values.len() as f64) as usize).min(values.len() - 1)]
                })
                .collect()
        };
        if !self.mode.is_mut() {
            self.noise[0] = pick(n * h, &[0.0, 2.0]);
        }
        self.noise[1] = pick(t * n * h, &[0.0, 1.0, 0.3]);
        if self.mode.has_cell_state() {
            self.noise[2] = pick(t * n * h, &[0.0, 1.0, 0.6]);
        }
        self
    }

    pub(super) fn noise(&self) -> Noise<'_, f64> {
        Noise {
            recurrent: opt(&self.noise[0]),
            zoneout_h: opt(&self.noise[1]),
            zoneout_c: opt(&self.noise[2]),
        }
    }

    pub(super) fn spec(&self) -> Spec<'_> {
        Spec {
            mode: self.mode,
            dims: self.dims,
            lengths: self.lengths.as_deref(),
            reverse: self.reverse,
        }
    }

    pub(super) fn weights(&self) -> Weights<'_, f64> {
        weights_of(&self.arrays)
    }

    pub(super) fn run(&self) -> Forward<f64> {
        let c0 = if self.arrays[2].is_empty() {
            None
        } else {
            Some(self.arrays[2].as_slice())
        };
        forward_with(
            &self.spec(),
            &self.arrays[0],
            &self.arrays[1],
            c0,
            &self.weights(),
            &self.noise(),
        )
        .unwrap()
    }

    pub(super) fn loss(&self) -> f64 {
        let f = self.run();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        dot(&f.output, &self.r[0])
            + dot(&f.h_n, &self.r[1])
            + f.c_n.map_or(0.0, |c| dot(&c, &self.r[2]))
    }

    pub(super) fn grads(&self) -> Grads<f64> {
        let f = self.run();
        let d_c_n = if self.mode.has_cell_state() {
            Some(self.r[2].as_slice())
        } else {
            None
        };
        backward_with(
            &self.spec(),
            &self.arrays[0],
            &self.weights(),
            &f.cache.view(),
            &self.r[0],
            Some(&self.r[1]),
            d_c_n,
            &self.noise(),
        )
        .unwrap()
    }

    /// Assert that `analytic`, the gradient of the loss with respect to
    /// `arrays[k][i]`, matches a central difference to relative error `tol`.
    pub(super) fn check_entry(&self, k: usize, i: usize, analytic: f64, tol: f64) {
        let eps = 1e-6;
        let mut p = self.clone();
        p.arrays[k][i] += eps;
        let up = p.loss();
        p.arrays[k][i] -= 2.0 * eps;
        let numeric = (up - p.loss()) / (2.0 * eps);
        let err = (numeric - analytic).abs() / (1e-3 + numeric.abs().max(analytic.abs()));
        assert!(
            err < tol,
            "{:?} reverse={} lengths={:?}: d{}[{i}] analytic {analytic} numeric {numeric}",
            self.mode,
            self.reverse,
            self.lengths,
            NAMES[k]
        );
    }

    /// Assert every analytic gradient matches central differences to 1e-6.
    pub(super) fn check(&self) {
        let g = self.grads();
        let analytic: [Option<&Vec<f64>>; 11] = [
            Some(&g.dx),
            Some(&g.dh0),
            g.dc0.as_ref(),
            Some(&g.dw_ih),
            Some(&g.dw_hh),
            g.db_ih.as_ref(),
            g.db_hh.as_ref(),
            g.dw_peep.as_ref(),
            g.dw_hr.as_ref(),
            g.dw_ln.as_ref(),
            g.db_ln.as_ref(),
        ];
        for (k, grad) in analytic.iter().enumerate() {
            assert_eq!(
                grad.map_or(0, |v| v.len()),
                self.arrays[k].len(),
                "{}",
                NAMES[k]
            );
            let Some(grad) = grad else { continue };
            for (i, &g) in grad.iter().enumerate() {
                self.check_entry(k, i, g, 1e-6);
            }
        }
    }
}

#[test]
fn every_gradient_matches_finite_differences() {
    let dims = Dims {
        t: 4,
        n: 3,
        d: 2,
        h: 3,
        p: 0,
    };
    let mut seed = 1;
    for mode in MODES {
        for reverse in [false, true] {
            for lengths in [None, Some(vec![4, 1, 2])] {
                for bias in [true, false] {
                    seed += 1;
                    Problem::new(mode, dims, lengths.clone(), reverse, bias, seed).check();
                }
            }
        }
    }
}

#[test]
fn gradients_with_dropout_and_zoneout_match_finite_differences() {
    let dims = Dims {
        t: 4,
        n: 3,
        d: 2,
        h: 3,
        p: 0,
    };
    let mut seed = 100;
    for mode in MODES {
        for reverse in [false, true] {
            for lengths in [None, Some(vec![4, 1, 2])] {
                seed += 1;
                Problem::new(mode, dims, lengths.clone(), reverse, true, seed)
                    .with_noise(seed + 7)
                    .check();
            }
        }
    }
}

#[test]
fn masks_of_one_and_zoneouts_of_zero_change_nothing() {
    let dims = Dims {
        t: 5,
        n: 2,
        d: 3,
        h: 4,
        p: 0,
    };
    for mode in MODES {
        let plain = Problem::new(mode, dims, Some(vec![5, 2]), false, true, 21);
        let mut noisy = plain.clone().with_noise(3);
        for (k, fill) in [(0, 1.0), (1, 0.0), (2, 0.0)] {
            noisy.noise[k].iter_mut().for_each(|v| *v = fill);
        }
        let (a, b) = (plain.run(), noisy.run());
        assert_eq!(a.output, b.output, "{mode:?}");
        assert_eq!(a.h_n, b.h_n, "{mode:?}");
        // The masked path sums the product's gradient separately: equal to rounding.
        let (ga, gb) = (plain.grads(), noisy.grads());
        for (a, b) in [(&ga.dw_hh, &gb.dw_hh), (&ga.dh0, &gb.dh0), (&ga.dx, &gb.dx)] {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-13, "{mode:?}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn sizes_of_one_work() {
    let dims = Dims {
        t: 1,
        n: 1,
        d: 1,
        h: 1,
        p: 0,
    };
    for mode in MODES {
        Problem::new(mode, dims, Some(vec![1]), true, true, 7).check();
    }
}

#[test]
fn padded_steps_are_zero_and_state_is_frozen() {
    for mode in MODES {
        for reverse in [false, true] {
            let dims = Dims {
                t: 5,
                n: 2,
                d: 3,
                h: 4,
                p: 0,
            };
            let p = Problem::new(mode, dims, Some(vec![2, 5]), reverse, true, 11);
            let f = p.run();
            // sequence 0 has 2 steps: outputs at t = 2, 3, 4 are zero
            for t in 2..5 {
                assert!(f.output[t * 8..t * 8 + 4].iter().all(|&v| v == 0.0));
            }
            // its final state equals running it alone over its 2 steps
            let mut alone = p.clone();
            let d = p.dims.d;
            alone.dims = Dims {
                t: 2,
                n: 1,
                d,
                h: 4,
                p: 0,
            };
            alone.lengths = None;
            let x: Vec<f64> = (0..2)
                .flat_map(|t| p.arrays[0][t * 2 * d..t * 2 * d + d].to_vec())
                .collect();
            alone.arrays[0] = x;
            alone.arrays[1].truncate(4);
            alone.arrays[2].truncate(if mode.has_cell_state() { 4 } else { 0 });
            let fa = alone.run();
            for (a, b) in fa.h_n.iter().zip(&f.h_n[..4]) {
                assert!((a - b).abs() < 1e-14, "{mode:?} reverse={reverse}");
            }
            if reverse {
                // the reverse direction's output at its first step (t=1) matches too
                for (a, b) in fa.output[4..8].iter().zip(&f.output[8..12]) {
                    assert!((a - b).abs() < 1e-14);
                }
            }
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    for mode in MODES {
        let dims = Dims {
            t: 30,
            n: 3,
            d: 5,
            h: 9,
            p: 0,
        };
        let p = Problem::new(mode, dims, Some(vec![30, 7, 19]), false, true, 3);
        let f64_out = p.run();
        let a: Vec<Vec<f32>> = cast(&p.arrays);
        let w = weights_of(&a);
        let f32_out = forward(&p.spec(), &a[0], &a[1], opt(&a[2]), &w).unwrap();
        for (x, y) in f32_out.output.iter().zip(&f64_out.output) {
            assert!((*x as f64 - y).abs() < 1e-4, "{mode:?}: {x} vs {y}");
        }
    }
}

#[test]
fn bad_inputs_give_errors_naming_the_argument() {
    let dims = Dims {
        t: 3,
        n: 2,
        d: 2,
        h: 2,
        p: 0,
    };
    let p = Problem::new(Mode::Lstm, dims, None, false, true, 5);
    let w = p.weights();
    let c0 = Some(p.arrays[2].as_slice());
    let run = |spec: &Spec<'_>, x: &[f64], w: &Weights<'_, f64>| {
        forward(spec, x, &p.arrays[1], c0, w).unwrap_err()
    };

    let lengths = [4usize, 1];
    let spec = Spec {
        lengths: Some(&lengths),
        ..p.spec()
    };
    assert!(
        matches!(run(&spec, &p.arrays[0], &w), RnnError::Argument { arg, .. } if arg == "lengths")
    );
    let lengths = [0usize, 1];
    let spec = Spec {
        lengths: Some(&lengths),
        ..p.spec()
    };
    assert!(
        matches!(run(&spec, &p.arrays[0], &w), RnnError::Argument { arg, .. } if arg == "lengths")
    );
    let lengths = [1usize];
    let spec = Spec {
        lengths: Some(&lengths),
        ..p.spec()
    };
    assert!(
        matches!(run(&spec, &p.arrays[0], &w), RnnError::Shape { arg, .. } if arg == "lengths")
    );

    let mut x = p.arrays[0].clone();
    x[3] = f64::NAN;
    assert_eq!(run(&p.spec(), &x, &w), RnnError::non_finite("x"));
    let mut w_hh = p.arrays[4].clone();
    w_hh[0] = f64::INFINITY;
    let bad = Weights { w_hh: &w_hh, ..w };
    assert_eq!(
        run(&p.spec(), &p.arrays[0], &bad),
        RnnError::non_finite("w_hh")
    );
    assert!(matches!(run(&p.spec(), &x[..5], &w), RnnError::Shape { arg, .. } if arg == "x"));

    let empty = Spec {
        dims: Dims { t: 0, ..dims },
        ..p.spec()
    };
    assert!(matches!(run(&empty, &[], &w), RnnError::Shape { arg, .. } if arg == "x"));
    let huge = Spec {
        dims: Dims {
            t: usize::MAX / 2,
            ..dims
        },
        ..p.spec()
    };
    assert!(matches!(run(&huge, &[], &w), RnnError::Shape { .. }));
}

/// Several shards (N = 35 > 2 * SHARD) with uneven lengths: sampled gradients
/// against finite differences, and bitwise the same results at 1, 2 and 3 threads.
#[test]
fn sharded_batches_are_correct_and_thread_count_independent() {
    let dims = Dims {
        t: 5,
        n: 35,
        d: 3,
        h: 4,
        p: 0,
    };
    let lengths: Vec<usize> = (0..35).map(|b| 1 + (b * 7) % 5).collect();
    for mode in MODES {
        for reverse in [false, true] {
            let p = Problem::new(mode, dims, Some(lengths.clone()), reverse, true, 99);
            let mut runs = Vec::new();
            for threads in [1, 2, 3] {
                crate::parallel::set_num_threads(Some(threads));
                let f = p.run();
                let g = p.grads();
                runs.push((
                    f.output, f.h_n, g.dx, g.dh0, g.dw_ih, g.dw_hh, g.db_ih, g.dw_peep, g.dw_ln,
                ));
            }
            crate::parallel::set_num_threads(None);
            assert!(
                runs.windows(2).all(|w| w[0] == w[1]),
                "{mode:?} differs across threads"
            );

            let g = p.grads();
            for (k, grad) in [(0, &g.dx), (1, &g.dh0), (3, &g.dw_ih), (4, &g.dw_hh)] {
                for i in (0..grad.len()).step_by(11) {
                    // The loss sums 700 outputs: central-difference roundoff is ~1e-9
                    // absolute here, hence a looser bound than the small problems'.
                    p.check_entry(k, i, grad[i], 1e-5);
                }
            }
        }
    }
}

/// `H >= WIDE_H`: one shard whose steps run in parallel blocks and row groups.
/// Sampled gradients against finite differences, and thread-count independence,
/// with the recurrent products over panels (6 and 20 rows) and through the
/// GEMM (more than `NARROW_ROWS`). `T = PACK_MIN_STEPS`: shorter sequences use
/// `W_hh` in place, through the GEMM.
#[test]
fn wide_steps_are_correct_and_thread_count_independent() {
    let h = crate::parallel::WIDE_H;
    let gemm_rows = super::recurrent::NARROW_ROWS + 4;
    let t = crate::linalg::PACK_MIN_STEPS;
    for (mode, n) in MODES
        .iter()
        .flat_map(|&m| [(m, 6), (m, 20), (m, gemm_rows)])
    {
        let dims = Dims {
            t,
            n,
            d: 2,
            h,
            p: 0,
        };
        let lengths = (0..n).map(|b| 1 + (b * 5) % t).collect();
        let reverse = matches!(mode, Mode::Gru | Mode::GruResetBefore | Mode::Mut2);
        let p = Problem::new(mode, dims, Some(lengths), reverse, true, 5);
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            crate::parallel::set_num_threads(Some(threads));
            let (f, g) = (p.run(), p.grads());
            runs.push((
                f.output, f.h_n, f.c_n, g.dx, g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.db_hh, g.dw_peep,
            ));
        }
        crate::parallel::set_num_threads(None);
        assert!(
            runs.windows(2).all(|w| w[0] == w[1]),
            "{mode:?} differs across threads"
        );
        let g = p.grads();
        for (k, grad) in [(0, &g.dx), (1, &g.dh0), (3, &g.dw_ih), (4, &g.dw_hh)] {
            for i in (0..grad.len()).step_by(grad.len() / 9 + 1) {
                // The loss sums T*N*H outputs: central differences carry ~1e-8 of roundoff.
                p.check_entry(k, i, grad[i], 1e-4);
            }
        }
    }
}

/// With zero peephole weights the peephole LSTM is the plain LSTM, in the
/// forward and in every gradient the two share.
#[test]
fn peephole_lstm_with_zero_peepholes_is_the_lstm() {
    let dims = Dims {
        t: 6,
        n: 4,
        d: 3,
        h: 5,
        p: 0,
    };
    for reverse in [false, true] {
        let mut p = Problem::new(
            Mode::LstmPeephole,
            dims,
            Some(vec![6, 2, 5, 1]),
            reverse,
            true,
            21,
        );
        p.arrays[7].fill(0.0);
        let mut q = p.clone();
        q.mode = Mode::Lstm;
        q.arrays[7].clear();
        let (fp, fq) = (p.run(), q.run());
        assert_eq!(fp.output, fq.output);
        assert_eq!(fp.c_n, fq.c_n);
        let (gp, gq) = (p.grads(), q.grads());
        assert_eq!((gp.dx, gp.dh0, gp.dc0), (gq.dx, gq.dh0, gq.dc0));
        assert_eq!(
            (gp.dw_ih, gp.dw_hh, gp.db_hh),
            (gq.dw_ih, gq.dw_hh, gq.db_hh)
        );
        assert!(gq.dw_peep.is_none());
        assert_eq!(gp.dw_peep.map(|v| v.len()), Some(3 * dims.h));
    }
}

/// `w_peep` is required by the peephole LSTM, refused by every other mode, and
/// checked for its length and for NaN.
#[test]
fn peephole_weights_are_checked() {
    let dims = Dims {
        t: 2,
        n: 2,
        d: 2,
        h: 3,
        p: 0,
    };
    let p = Problem::new(Mode::LstmPeephole, dims, None, false, true, 4);
    let c0 = Some(p.arrays[2].as_slice());
    let run = |w: &Weights<'_, f64>| forward(&p.spec(), &p.arrays[0], &p.arrays[1], c0, w);
    let arg_of = |e: RnnError| match e {
        RnnError::Argument { arg, .. } | RnnError::Shape { arg, .. } => arg,
        other => panic!("unexpected {other:?}"),
    };
    let w = p.weights();
    assert!(run(&w).is_ok());
    assert_eq!(
        arg_of(run(&Weights { w_peep: None, ..w }).unwrap_err()),
        "w_peep"
    );
    let short = &p.arrays[7][1..];
    let err = run(&Weights {
        w_peep: Some(short),
        ..w
    })
    .unwrap_err();
    assert!(matches!(&err, RnnError::Shape { .. }), "{err:?}");
    assert_eq!(arg_of(err), "w_peep");
    let mut nan = p.arrays[7].clone();
    nan[4] = f64::NAN;
    assert_eq!(
        run(&Weights {
            w_peep: Some(&nan),
            ..w
        })
        .unwrap_err(),
        RnnError::non_finite("w_peep")
    );
    let q = Problem::new(Mode::Lstm, dims, None, false, true, 4);
    let wq = Weights {
        w_peep: Some(&p.arrays[7]),
        ..q.weights()
    };
    let err = forward(
        &q.spec(),
        &q.arrays[0],
        &q.arrays[1],
        Some(&q.arrays[2]),
        &wq,
    )
    .unwrap_err();
    assert!(
        matches!(&err, RnnError::Argument { arg, .. } if arg == "w_peep"),
        "{err:?}"
    );
}

/// MUT1 and MUT2 add `x` itself to a gate, so an input size other than `H` is
/// an argument error naming `x`; MUT3 takes any input size.
#[test]
fn mut1_and_mut2_need_an_input_size_equal_to_the_hidden_size() {
    let dims = Dims {
        t: 2,
        n: 1,
        d: 2,
        h: 3,
        p: 0,
    };
    for mode in [Mode::Mut1, Mode::Mut2, Mode::Mut3] {
        let p = Problem::new(Mode::Mut3, dims, None, false, true, 8);
        let mut w = p.weights();
        let w_ih: Vec<f64> = p.arrays[3][..mode.ih_blocks() * 3 * 2].to_vec();
        let w_hh: Vec<f64> = p.arrays[4][..mode.hh_blocks() * 3 * 3].to_vec();
        let (b_ih, b_hh) = (
            p.arrays[5][..mode.ih_blocks() * 3].to_vec(),
            p.arrays[6][..mode.hh_blocks() * 3].to_vec(),
        );
        (w.w_ih, w.w_hh, w.b_ih, w.b_hh) = (&w_ih, &w_hh, Some(&b_ih[..]), Some(&b_hh[..]));
        let spec = Spec { mode, ..p.spec() };
        let got = forward(&spec, &p.arrays[0], &p.arrays[1], None, &w);
        if mode == Mode::Mut3 {
            assert!(got.is_ok());
        } else {
            assert!(
                matches!(got, Err(RnnError::Argument { ref arg, .. }) if arg == "x"),
                "{mode:?}: {got:?}"
            );
        }
    }
}
