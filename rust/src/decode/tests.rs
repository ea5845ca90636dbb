//! The decoding step against the sequence kernels, one layer at a time; the
//! loops against repeated steps; every SIMD level and thread count.

use super::*;
use crate::error::RnnError;
use crate::mode::Mode;
use crate::panel::stored::{self, Storage};
use crate::real::Real;
use crate::sequence::{self, Dims, Spec};
use crate::simd::Level;
use crate::test_util::Lcg;

/// A random model's parameters, owned.
struct Model {
    mode: Mode,
    v: usize,
    e: Option<usize>,
    h: usize,
    layers: Vec<[Vec<f64>; 4]>,
    embedding: Vec<f64>,
    head_w: Vec<f64>,
    head_b: Vec<f64>,
}

/// A plain cell's `[W_ih, W_hh, b_ih, b_hh]` as the sequence kernels take it.
fn plain_weights<R>(a: &[Vec<R>; 4]) -> sequence::Weights<'_, R> {
    sequence::Weights {
        w_ih: &a[0],
        w_hh: &a[1],
        b_ih: Some(&a[2]),
        b_hh: Some(&a[3]),
        w_peep: None,
        w_ln: None,
        b_ln: None,
        w_hr: None,
    }
}

impl Model {
    fn new(mode: Mode, v: usize, e: Option<usize>, h: usize, l: usize, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        let gh = mode.gates() * h;
        let layers = (0..l)
            .map(|i| {
                let k = if i > 0 { h } else { e.unwrap_or(v) };
                [
                    rng.vec(gh * k, 0.5),
                    rng.vec(gh * h, 0.5),
                    rng.vec(gh, 0.3),
                    rng.vec(gh, 0.3),
                ]
            })
            .collect();
        Self {
            mode,
            v,
            e,
            h,
            layers,
            embedding: rng.vec(v * e.unwrap_or(0), 1.0),
            head_w: rng.vec(v * h, 0.5),
            head_b: rng.vec(v, 0.2),
        }
    }

    fn cast<R: Real>(v: &[f64]) -> Vec<R> {
        v.iter().map(|&x| R::from_f64(x)).collect()
    }

    fn stack<R: Real>(&self) -> Stack<R> {
        self.stack_kept::<R>(Storage::Full)
    }

    /// The model with its weight matrices as `storage` keeps them: each
    /// `W_ih`, `W_hh` and the readout's weights rounded to bfloat16 or to
    /// `q * s` in `R`, widened back; the rest as it is.
    fn dequantized<R: Real>(&self, storage: Storage) -> Self {
        let gh = self.mode.gates() * self.h;
        let back = |w: &[f64], rows: usize| -> Vec<f64> {
            let k = w.len() / rows;
            let w = stored::dequantized(storage, &Self::cast::<R>(w), rows, k);
            w.iter().map(|v| v.to_f64()).collect()
        };
        Self {
            mode: self.mode,
            v: self.v,
            e: self.e,
            h: self.h,
            layers: self
                .layers
                .iter()
                .map(|[w_ih, w_hh, b_ih, b_hh]| {
                    [back(w_ih, gh), back(w_hh, gh), b_ih.clone(), b_hh.clone()]
                })
                .collect(),
            embedding: self.embedding.clone(),
            head_w: back(&self.head_w, self.v),
            head_b: self.head_b.clone(),
        }
    }

    fn stack_kept<R: Real>(&self, storage: Storage) -> Stack<R> {
        let layers: Vec<[Vec<R>; 4]> = self
            .layers
            .iter()
            .map(|a| std::array::from_fn(|i| Self::cast(&a[i])))
            .collect();
        let emb = Self::cast::<R>(&self.embedding);
        let (head_w, head_b) = (Self::cast::<R>(&self.head_w), Self::cast::<R>(&self.head_b));
        Stack::new(
            &ModelWeights {
                mode: self.mode,
                hidden: self.h,
                input: if self.e.is_some() {
                    Input::Embedding(&emb)
                } else {
                    Input::OneHot
                },
                layers: layers.iter().map(|a| plain_weights(a)).collect(),
                head_w: &head_w,
                head_b: Some(&head_b),
            },
            storage,
        )
        .unwrap()
    }

    /// One step through the sequence kernels (T = 1) and a plain readout.
    fn reference(
        &self,
        ids: &[usize],
        h: &[f64],
        c: Option<&[f64]>,
    ) -> (Vec<f64>, Vec<f64>, Option<Vec<f64>>) {
        let (n, hsz) = (ids.len(), self.h);
        let mut x: Vec<f64> = match self.e {
            None => ids
                .iter()
                .flat_map(|&i| (0..self.v).map(move |j| if i == j { 1.0 } else { 0.0 }))
                .collect(),
            Some(e) => ids
                .iter()
                .flat_map(|&i| self.embedding[i * e..(i + 1) * e].to_vec())
                .collect(),
        };
        let (mut h_out, mut c_out) = (Vec::new(), Vec::new());
        for (l, a) in self.layers.iter().enumerate() {
            let d = x.len() / n;
            let spec = Spec {
                mode: self.mode,
                dims: Dims {
                    t: 1,
                    n,
                    d,
                    h: hsz,
                    p: 0,
                },
                lengths: None,
                reverse: false,
            };
            let w = plain_weights(a);
            let at = l * n * hsz..(l + 1) * n * hsz;
            let f = sequence::forward(&spec, &x, &h[at.clone()], c.map(|c| &c[at]), &w).unwrap();
            h_out.extend_from_slice(&f.h_n);
            if let Some(cn) = &f.c_n {
                c_out.extend_from_slice(cn);
            }
            x = f.h_n;
        }
        let mut lp = Vec::new();
        for row in x.chunks_exact(hsz) {
            let logits: Vec<f64> = (0..self.v)
                .map(|j| {
                    self.head_b[j]
                        + (0..hsz)
                            .map(|k| self.head_w[j * hsz + k] * row[k])
                            .sum::<f64>()
                })
                .collect();
            let max = logits.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z));
            let lse = max + logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln();
            lp.extend(logits.iter().map(|z| z - lse));
        }
        (lp, h_out, c.map(|_| c_out))
    }
}

const MODES: [Mode; 4] = [Mode::RnnTanh, Mode::RnnRelu, Mode::Lstm, Mode::Gru];
const LEVELS: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

fn state(m: &Model, n: usize, seed: u64) -> (Vec<f64>, Option<Vec<f64>>) {
    let mut rng = Lcg(seed);
    let len = m.layers.len() * n * m.h;
    let c = m.mode.has_cell_state().then(|| rng.vec(len, 0.5));
    (rng.vec(len, 0.5), c)
}

fn step<R: Real>(
    stack: &Stack<R>,
    level: Level,
    ids: &[usize],
    h: &[R],
    c: Option<&[R]>,
) -> (Vec<R>, Vec<R>, Option<Vec<R>>) {
    let n = ids.len();
    let mut h_out = vec![R::ZERO; h.len()];
    let mut c_out = c.map(|c| vec![R::ZERO; c.len()]);
    let mut lp = vec![R::ZERO; n * stack.vocab()];
    let mut scratch = vec![R::ZERO; stack.scratch_len(n)];
    stack.step(
        level,
        ids,
        h,
        c,
        &mut h_out,
        c_out.as_deref_mut(),
        &mut lp,
        &mut scratch,
    );
    (lp, h_out, c_out)
}

fn max_diff<R: Real>(a: &[R], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.to_f64() - y).abs())
        .fold(0.0, f64::max)
}

/// Shapes with 1s, sizes on and off the panel widths, one-hot and embedded input.
fn cases() -> Vec<(usize, Option<usize>, usize, usize, usize)> {
    vec![
        (1, None, 1, 1, 1),
        (5, None, 3, 1, 2),
        (7, Some(3), 17, 2, 5),
        (40, Some(3), 33, 3, 4), // V > 4E: embedding rows times W_ih panels
        (65, None, 70, 2, 1),
        (9, Some(8), 21, 1, 9),
    ]
}

#[test]
fn step_matches_the_sequence_kernels_in_f64_at_every_level() {
    let mut seed = 1;
    for mode in MODES {
        for (v, e, h, l, n) in cases() {
            seed += 1;
            let m = Model::new(mode, v, e, h, l, seed);
            let ids: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize) % v).collect();
            let (h0, c0) = state(&m, n, seed + 100);
            let (lp_ref, h_ref, c_ref) = m.reference(&ids, &h0, c0.as_deref());
            let stack = m.stack::<f64>();
            for level in LEVELS {
                let (lp, h1, c1) = step(&stack, level, &ids, &h0, c0.as_deref());
                let what = format!("{mode:?} V={v} E={e:?} H={h} L={l} N={n} {level:?}");
                assert!(max_diff(&lp, &lp_ref) < 1e-12, "log_probs {what}");
                assert!(max_diff(&h1, &h_ref) < 1e-12, "h {what}");
                if let (Some(c1), Some(c_ref)) = (&c1, &c_ref) {
                    assert!(max_diff(c1, c_ref) < 1e-12, "c {what}");
                }
            }
        }
    }
}

/// A compressed decoder is the model with its weights as the panels keep them:
/// bfloat16 bitwise (the same products over the same widened values), int8 to
/// the rounding of its sums (each column's sum is scaled once, at the end).
/// A compressed stack against the full stack of its dequantized weights:
/// bitwise, for both storages (the kernel widens and scales in registers with
/// the roundings of `stored::dequantized`).
fn check_compressed<R: Real>() {
    let mut seed = 40;
    for mode in MODES {
        for (v, e, h, l, n) in cases() {
            seed += 1;
            let m = Model::new(mode, v, e, h, l, seed);
            let ids: Vec<usize> = (0..n).map(|i| (i * 5 + seed as usize) % v).collect();
            let (h0, c0) = state(&m, n, seed + 7);
            let h0: Vec<R> = Model::cast(&h0);
            let c0: Option<Vec<R>> = c0.as_deref().map(Model::cast);
            for storage in [Storage::Bf16, Storage::Int8] {
                let kept = m.stack_kept::<R>(storage);
                let plain = m.dequantized::<R>(storage).stack::<R>();
                for level in LEVELS {
                    let got = step(&kept, level, &ids, &h0, c0.as_deref());
                    let want = step(&plain, level, &ids, &h0, c0.as_deref());
                    let what = format!(
                        "{storage:?} {} {mode:?} V={v} E={e:?} H={h} L={l} N={n} {level:?}",
                        R::NAME
                    );
                    let same = |a: &[R], b: &[R]| {
                        a.len() == b.len()
                            && a.iter()
                                .zip(b)
                                .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits())
                    };
                    assert!(same(&got.0, &want.0), "log_probs {what}");
                    assert!(same(&got.1, &want.1), "h {what}");
                    if let (Some(a), Some(b)) = (&got.2, &want.2) {
                        assert!(same(a, b), "c {what}");
                    }
                }
            }
        }
    }
}

#[test]
fn compressed_weights_decode_as_the_model_with_those_weights() {
    check_compressed::<f64>();
    check_compressed::<f32>();
}

#[test]
fn compressed_weights_take_fewer_bytes() {
    let m = Model::new(Mode::Lstm, 40, Some(3), 64, 2, 9); // V > 4E: layer 0 has panels
    let full = m.stack::<f32>().weight_bytes();
    assert_eq!(m.stack_kept::<f32>(Storage::Bf16).weight_bytes() * 2, full);
    let int8 = m.stack_kept::<f32>(Storage::Int8).weight_bytes();
    assert!(
        int8 * 4 > full && int8 * 4 < full + full / 8,
        "{int8} of {full}"
    );
}

#[test]
fn f32_step_is_close_to_f64() {
    for mode in MODES {
        let m = Model::new(mode, 65, Some(16), 100, 2, 7);
        let ids: Vec<usize> = (0..6).map(|i| i * 11 % 65).collect();
        let (h0, c0) = state(&m, 6, 3);
        let (lp_ref, h_ref, _) = m.reference(&ids, &h0, c0.as_deref());
        let cast = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let c32 = c0.as_deref().map(cast);
        let (lp, h1, _) = step(
            &m.stack::<f32>(),
            crate::simd::best_level(),
            &ids,
            &cast(&h0),
            c32.as_deref(),
        );
        assert!(max_diff(&lp, &lp_ref) < 2e-5, "{mode:?} log_probs");
        assert!(max_diff(&h1, &h_ref) < 2e-5, "{mode:?} h");
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    for mode in [Mode::Lstm, Mode::Gru] {
        let m = Model::new(mode, 30, None, 300, 2, 11);
        let stack = m.stack::<f32>();
        for n in [1, 7] {
            let ids: Vec<usize> = (0..n).map(|i| i * 5 % 30).collect();
            let (h0, c0) = state(&m, n, 5);
            let h0: Vec<f32> = h0.iter().map(|&x| x as f32).collect();
            let c0: Option<Vec<f32>> = c0.map(|c| c.iter().map(|&x| x as f32).collect());
            let mut results = Vec::new();
            for threads in [1, 2, 3] {
                crate::parallel::set_num_threads(Some(threads));
                results.push(step(
                    &stack,
                    crate::simd::best_level(),
                    &ids,
                    &h0,
                    c0.as_deref(),
                ));
            }
            crate::parallel::set_num_threads(None);
            assert!(results.windows(2).all(|w| w[0] == w[1]), "{mode:?} N={n}");
        }
    }
}

#[test]
fn run_equals_repeated_steps() {
    let m = Model::new(Mode::Lstm, 11, Some(4), 13, 2, 21);
    let stack = m.stack::<f64>();
    let (n, t) = (3, 5);
    let ids: Vec<usize> = (0..n * t).map(|i| i * 3 % 11).collect();
    let (h0, c0) = state(&m, n, 2);
    let level = crate::simd::best_level();
    let (lp, fin) = run(
        &stack,
        level,
        &ids,
        n,
        State {
            h: h0.clone(),
            c: c0.clone(),
        },
    )
    .unwrap();
    let (mut h, mut c) = (h0, c0);
    for s in 0..t {
        let col: Vec<usize> = (0..n).map(|i| ids[i * t + s]).collect();
        let (lp1, h1, c1) = step(&stack, level, &col, &h, c.as_deref());
        for i in 0..n {
            assert_eq!(&lp[(i * t + s) * 11..][..11], &lp1[i * 11..][..11]);
        }
        (h, c) = (h1, c1);
    }
    assert_eq!(fin.h, h);
    assert_eq!(fin.c, c);
}

#[test]
fn sample_equals_a_loop_of_steps_and_draws() {
    let m = Model::new(Mode::Gru, 6, None, 10, 2, 5);
    let stack = m.stack::<f64>();
    let level = crate::simd::best_level();
    let (n, length, stop) = (4, 12, 2);
    let mut rng = Lcg(9);
    let uniforms: Vec<f64> = (0..n * length).map(|_| rng.next() * 0.5 + 0.5).collect();
    let knobs = Knobs::new(0.8, Some(4), Some(0.95), 1e-9).unwrap();
    let first = vec![-(6f64.ln()); n * 6];
    let (h0, _) = state(&m, n, 1);
    let got = sample(
        &stack,
        level,
        &first,
        State {
            h: h0.clone(),
            c: None,
        },
        &Sampling {
            length,
            knobs,
            stop: Some(stop),
            uniforms: &uniforms,
        },
    )
    .unwrap();
    // The same by hand, one row at a time (rows are independent).
    let mut drawer = Drawer::new(6);
    let mut cursor_of_step = vec![0usize; length + 1];
    let mut alive = vec![true; n];
    let mut hs: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..2)
                .flat_map(|l| h0[(l * n + i) * 10..][..10].to_vec())
                .collect()
        })
        .collect();
    let mut lps: Vec<Vec<f64>> = vec![first[..6].to_vec(); n];
    for t in 0..length {
        let mut cursor = cursor_of_step[t];
        for i in 0..n {
            if !alive[i] {
                continue;
            }
            let id = drawer.draw(&lps[i], &knobs, uniforms[cursor]);
            cursor += 1;
            assert_eq!(got.ids[i * length + t], id as i64, "row {i} step {t}");
            if id == stop {
                alive[i] = false;
                assert_eq!(got.ends[i], t + 1);
                continue;
            }
            let (lp, h1, _) = step(&stack, level, &[id], &hs[i], None);
            (lps[i], hs[i]) = (lp, h1);
        }
        cursor_of_step[t + 1] = cursor;
    }
    for (i, _) in alive.iter().enumerate().filter(|(_, &a)| a) {
        assert_eq!(got.ends[i], length);
    }
}

#[test]
fn bad_weights_and_states_are_errors() {
    let m = Model::new(Mode::Lstm, 5, None, 4, 1, 1);
    let mut w_hh = m.layers[0][1].clone();
    w_hh[3] = f64::NAN;
    let weights = |w_hh: &[f64], head: &[f64]| -> crate::Result<Stack<f64>> {
        Stack::new(
            &ModelWeights {
                mode: Mode::Lstm,
                hidden: 4,
                input: Input::OneHot,
                layers: vec![sequence::Weights {
                    w_ih: &m.layers[0][0],
                    w_hh,
                    b_ih: None,
                    b_hh: None,
                    w_peep: None,
                    w_ln: None,
                    b_ln: None,
                    w_hr: None,
                }],
                head_w: head,
                head_b: None,
            },
            Storage::Full,
        )
    };
    let err = weights(&w_hh, &m.head_w).err().unwrap();
    assert!(err.to_string().contains("weight_hh_l0"), "{err}");
    let err = weights(&m.layers[0][1][1..], &m.head_w).err().unwrap();
    assert!(err.to_string().contains("weight_hh_l0"), "{err}");
    let err = weights(&m.layers[0][1], &m.head_w[1..]).err().unwrap();
    assert!(err.to_string().contains("head.weight"), "{err}");
    let stack = weights(&m.layers[0][1], &m.head_w).unwrap();
    let bad = State {
        h: vec![0.0; 4],
        c: None,
    };
    assert!(run(&stack, Level::Scalar, &[0], 1, bad).is_err());
}

#[test]
fn sizes_too_large_for_memory_are_errors_not_aborts() {
    let m = Model::new(Mode::Gru, 6, None, 10, 2, 5);
    let stack = m.stack::<f64>();
    let level = crate::simd::best_level();
    let knobs = Knobs::new(0.0, None, None, 1e-9).unwrap();
    let n = 2;
    let first = vec![-(6f64.ln()); n * 6];
    for length in [usize::MAX / 2 + 1, usize::MAX, 1usize << 60] {
        let (h0, _) = state(&m, n, 1);
        let got = sample(
            &stack,
            level,
            &first,
            State { h: h0, c: None },
            &Sampling {
                length,
                knobs,
                stop: None,
                uniforms: &[],
            },
        );
        assert!(
            matches!(&got, Err(RnnError::OutOfMemory { what, .. }) if what == "length * N"),
            "length {length}: {:?}",
            got.as_ref().err()
        );
    }
}

/// The cells the decoder has no kernel for are refused by name, not run as
/// another cell.
#[test]
fn cells_without_a_decoder_kernel_are_refused_by_name() {
    for mode in [
        Mode::GruResetBefore,
        Mode::LstmCifg,
        Mode::LstmPeephole,
        Mode::LstmLayerNorm,
        Mode::GruLayerNorm,
        Mode::Mut1,
        Mode::Mut2,
        Mode::Mut3,
    ] {
        let m = Model::new(mode, 5, None, 4, 1, 1);
        let w_peep = [0.0; 3 * 4];
        let err = Stack::new(
            &ModelWeights {
                mode,
                hidden: 4,
                input: Input::OneHot,
                layers: vec![sequence::Weights {
                    w_ih: &m.layers[0][0],
                    w_hh: &m.layers[0][1],
                    b_ih: Some(&m.layers[0][2]),
                    b_hh: Some(&m.layers[0][3]),
                    w_peep: mode.has_peepholes().then_some(&w_peep[..]),
                    w_ln: None,
                    b_ln: None,
                    w_hr: None,
                }],
                head_w: &m.head_w,
                head_b: None,
            },
            Storage::Full,
        )
        .err()
        .unwrap();
        assert!(
            matches!(&err, RnnError::Argument { arg, .. } if arg == "mode"),
            "{err:?}"
        );
        assert!(err.to_string().contains(mode.name()), "{err}");
    }
}
