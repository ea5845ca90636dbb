//! The inference path ([`infer_with`]), with its input projection made step
//! by step, gives the bits of the forward that keeps everything and projects
//! all steps first.

use super::tests::{cast, opt, weights_of, Problem, MODES};
use super::*;
use crate::mode::Mode;
use crate::parallel;
use crate::real::Real;

/// The same call through both paths, at 1, 2 and 3 threads, in `f64` and
/// `f32`: every result bitwise equal (and the kept forward's at 1 thread).
fn check_paths(p: &Problem) {
    check_typed::<f64>(p);
    check_typed::<f32>(p);
}

fn check_typed<F: Real>(p: &Problem) {
    let (a, nz) = (cast::<F>(&p.arrays), cast::<F>(&p.noise));
    let spec = p.spec();
    let w = weights_of(&a);
    let noise = Noise {
        recurrent: opt(&nz[0]),
        zoneout_h: opt(&nz[1]),
        zoneout_c: opt(&nz[2]),
    };
    let (x, h0, c0) = (&a[0], &a[1], opt(&a[2]));
    parallel::set_num_threads(Some(1));
    let want = forward_with(&spec, x, h0, c0, &w, &noise).unwrap();
    let what = format!(
        "{:?} {:?} reverse={} lengths={:?} {}",
        p.mode,
        p.dims,
        p.reverse,
        p.lengths,
        std::any::type_name::<F>()
    );
    for threads in [1, 2, 3] {
        parallel::set_num_threads(Some(threads));
        let kept = forward_with(&spec, x, h0, c0, &w, &noise).unwrap();
        assert_eq!(
            kept.output, want.output,
            "output, {what}, {threads} threads"
        );
        let inferred = infer_with(&spec, x, h0, c0, &w, &noise).unwrap();
        assert_eq!(
            inferred.output, want.output,
            "inference output, {what}, {threads} threads"
        );
        assert_eq!(inferred.h_n, want.h_n, "inference h_n, {what}");
        assert_eq!(inferred.c_n, want.c_n, "inference c_n, {what}");
    }
    parallel::set_num_threads(None);
}

#[test]
fn inference_and_step_projections_give_the_bits_of_the_kept_forward() {
    let mut seed = 500;
    // Steps of fewer and more rows than a step's own projection needs; H and D
    // off the SIMD width, and wide enough (H >= 256) for the steps' products to
    // be split among threads.
    let sizes = [
        (3, 8, 5, 7),
        (9, 4, 3, 17),
        (2, 11, 40, 33),
        (3, 9, 20, 260),
    ];
    for (t, n, d, h) in sizes {
        for mode in MODES {
            for (reverse, lengths) in [
                (false, None),
                (true, Some((1..=n).map(|i| 1 + i % t).collect())),
            ] {
                seed += 1;
                let dims = Dims { t, n, d, h, p: 0 };
                let bias = seed % 3 != 0;
                let p = Problem::new(mode, dims, lengths, reverse, bias, seed);
                check_paths(&p);
                check_paths(&p.with_noise(seed + 11));
            }
        }
    }
}

#[test]
fn inference_with_a_projection_gives_the_bits_of_the_kept_forward() {
    for (seed, (t, n, h, pr)) in [(3usize, 4usize, 9usize, 4usize), (6, 10, 33, 16)]
        .into_iter()
        .enumerate()
    {
        let dims = Dims {
            t,
            n,
            d: 6,
            h,
            p: pr,
        };
        for reverse in [false, true] {
            check_paths(&Problem::new(
                Mode::Lstm,
                dims,
                None,
                reverse,
                true,
                900 + seed as u64,
            ));
        }
    }
}
