//! The LSTM with projections (`Dims::p > 0`): finite-difference checks of every
//! gradient (including `dw_hr`), thread-count independence on the shard and
//! wide paths, padded steps, and the errors of its arguments.

use super::tests::{cast, opt, weights_of, Problem};
use super::*;
use crate::error::RnnError;
use crate::mode::Mode;

fn dims(t: usize, n: usize, d: usize, h: usize, p: usize) -> Dims {
    Dims { t, n, d, h, p }
}

#[test]
fn every_gradient_matches_finite_differences() {
    let mut seed = 40;
    for (h, p) in [(3, 1), (3, 2), (5, 3), (2, 1)] {
        for reverse in [false, true] {
            for lengths in [None, Some(vec![4, 1, 2])] {
                for bias in [true, false] {
                    seed += 1;
                    let q = Problem::new(
                        Mode::Lstm,
                        dims(4, 3, 2, h, p),
                        lengths.clone(),
                        reverse,
                        bias,
                        seed,
                    );
                    q.check();
                    assert_eq!(q.grads().dw_hr.map(|g| g.len()), Some(p * h));
                }
            }
        }
    }
    Problem::new(
        Mode::Lstm,
        dims(1, 1, 1, 2, 1),
        Some(vec![1]),
        true,
        true,
        3,
    )
    .check();
}

#[test]
fn shapes_follow_the_projection_size() {
    let q = Problem::new(Mode::Lstm, dims(3, 2, 4, 5, 2), None, false, true, 8);
    let f = q.run();
    assert_eq!(f.output.len(), 3 * 2 * 2);
    assert_eq!(f.h_n.len(), 2 * 2);
    assert_eq!(f.c_n.as_ref().map(Vec::len), Some(2 * 5));
    assert_eq!(f.cache.states.len(), 4 * 2 * 2);
    assert_eq!(f.cache.proj.as_ref().map(Vec::len), Some(3 * 2 * 5));
    // The output at the last step is the final state.
    assert_eq!(&f.output[2 * 4..], &f.h_n[..]);
    let g = q.grads();
    assert_eq!((g.dh0.len(), g.dw_hh.len()), (2 * 2, 4 * 5 * 2));
    assert_eq!(g.dc0.map(|v| v.len()), Some(2 * 5));
}

#[test]
fn padded_steps_are_zero_and_state_is_frozen() {
    for reverse in [false, true] {
        let q = Problem::new(
            Mode::Lstm,
            dims(5, 2, 3, 4, 3),
            Some(vec![2, 5]),
            reverse,
            true,
            11,
        );
        let f = q.run();
        for t in 2..5 {
            assert!(f.output[t * 6..t * 6 + 3].iter().all(|&v| v == 0.0));
        }
        let mut alone = q.clone();
        let d = q.dims.d;
        alone.dims = dims(2, 1, d, 4, 3);
        alone.lengths = None;
        alone.arrays[0] = (0..2)
            .flat_map(|t| q.arrays[0][t * 2 * d..t * 2 * d + d].to_vec())
            .collect();
        alone.arrays[1].truncate(3);
        alone.arrays[2].truncate(4);
        let fa = alone.run();
        for (a, b) in fa.h_n.iter().zip(&f.h_n[..3]) {
            assert!((a - b).abs() < 1e-14, "reverse={reverse}");
        }
        for (a, b) in fa.c_n.unwrap().iter().zip(&f.c_n.as_ref().unwrap()[..4]) {
            assert!((a - b).abs() < 1e-14, "reverse={reverse}");
        }
    }
}

/// Bitwise the same at 1, 2 and 3 threads: several shards (N = 35), and one
/// wide shard (`H = WIDE_H`) over panels and through the GEMM; sampled
/// gradients against finite differences.
#[test]
fn thread_count_independent_on_every_path() {
    let wide = crate::parallel::WIDE_H;
    let gemm_rows = super::recurrent::NARROW_ROWS + 4;
    let t = crate::linalg::PACK_MIN_STEPS;
    let cases = [
        (dims(5, 35, 3, 6, 5), false),
        (dims(5, 35, 3, 6, 1), true),
        (dims(t, 6, 2, wide, 7), false),
        (dims(t, 20, 2, wide, 33), true),
        (dims(t, gemm_rows, 2, wide, 17), false),
    ];
    for (dm, reverse) in cases {
        let lengths = (0..dm.n).map(|b| 1 + (b * 7) % dm.t).collect();
        let q = Problem::new(Mode::Lstm, dm, Some(lengths), reverse, true, 99);
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            crate::parallel::set_num_threads(Some(threads));
            let (f, g) = (q.run(), q.grads());
            runs.push((
                f.output, f.h_n, f.c_n, g.dx, g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.dw_hr,
            ));
        }
        crate::parallel::set_num_threads(None);
        assert!(
            runs.windows(2).all(|w| w[0] == w[1]),
            "{dm:?} differs across threads"
        );
        let g = q.grads();
        let dw_hr = g.dw_hr.as_ref().unwrap();
        for (k, grad) in [(0, &g.dx), (1, &g.dh0), (4, &g.dw_hh), (8, dw_hr)] {
            for i in (0..grad.len()).step_by(grad.len() / 7 + 1) {
                q.check_entry(k, i, grad[i], 1e-4);
            }
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let q = Problem::new(
        Mode::Lstm,
        dims(30, 3, 5, 9, 4),
        Some(vec![30, 7, 19]),
        true,
        true,
        3,
    );
    let f64_out = q.run();
    let a: Vec<Vec<f32>> = cast(&q.arrays);
    let w = weights_of(&a); // no peepholes, no normalisation: those arrays are empty
    let f32_out = forward(&q.spec(), &a[0], &a[1], opt(&a[2]), &w).unwrap();
    for (x, y) in f32_out.output.iter().zip(&f64_out.output) {
        assert!((*x as f64 - y).abs() < 1e-4, "{x} vs {y}");
    }
}

#[test]
fn bad_projections_are_errors_naming_w_hr() {
    let q = Problem::new(Mode::Lstm, dims(2, 2, 2, 3, 2), None, false, true, 4);
    let run = |spec: &Spec<'_>, w: &Weights<'_, f64>| {
        forward(spec, &q.arrays[0], &q.arrays[1], opt(&q.arrays[2]), w)
    };
    let arg_of = |e: RnnError| match e {
        RnnError::Argument { arg, .. } | RnnError::Shape { arg, .. } => arg,
        RnnError::NonFinite { arg } => arg,
        other => panic!("unexpected {other:?}"),
    };
    let w = q.weights();
    assert!(run(&q.spec(), &w).is_ok());
    assert_eq!(
        arg_of(run(&q.spec(), &Weights { w_hr: None, ..w }).unwrap_err()),
        "w_hr"
    );
    let short = &q.arrays[8][1..];
    let err = run(
        &q.spec(),
        &Weights {
            w_hr: Some(short),
            ..w
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, RnnError::Shape { arg, .. } if arg == "w_hr"),
        "{err:?}"
    );
    let mut nan = q.arrays[8].clone();
    nan[1] = f64::NAN;
    let err = run(
        &q.spec(),
        &Weights {
            w_hr: Some(&nan),
            ..w
        },
    )
    .unwrap_err();
    assert_eq!(err, RnnError::non_finite("w_hr"));
    // P must lie in 1..H, and only the LSTM has a projection.
    for p in [3, 4] {
        let spec = Spec {
            dims: dims(2, 2, 2, 3, p),
            ..q.spec()
        };
        let err = run(&spec, &w).unwrap_err();
        assert!(
            matches!(&err, RnnError::Argument { arg, .. } if arg == "w_hr"),
            "{err:?}"
        );
    }
    // A plain LSTM (P = 0) given a projection.
    let plain = Problem::new(Mode::Lstm, dims(2, 2, 2, 3, 0), None, false, true, 4);
    let w_plain = Weights {
        w_hr: Some(&q.arrays[8]),
        ..plain.weights()
    };
    let err = forward(
        &plain.spec(),
        &plain.arrays[0],
        &plain.arrays[1],
        opt(&plain.arrays[2]),
        &w_plain,
    )
    .unwrap_err();
    assert_eq!(arg_of(err), "w_hr");
    for mode in [Mode::Gru, Mode::LstmCifg, Mode::LstmPeephole, Mode::RnnTanh] {
        let spec = Spec { mode, ..q.spec() };
        let err = run(&spec, &w).unwrap_err();
        assert!(
            matches!(&err, RnnError::Argument { arg, .. } if arg == "w_hr"),
            "{mode:?}: {err:?}"
        );
    }
}
