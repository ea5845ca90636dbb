//! The decoder's gradients against central differences of its own forward, for
//! every cell and attention kind (the Python tests compare it with the NumPy
//! reference and torch); padded source steps get weight exactly 0.

use super::*;
use crate::mode::Mode;
use crate::test_util::Lcg;

struct Case {
    mode: Mode,
    kind: Kind,
    t: usize,
    n: usize,
    s: usize,
    e: usize,
    h: usize,
    m: usize,
    a: usize,
}

struct Arrays {
    y: Vec<f64>,
    memory: Vec<f64>,
    h0: Vec<f64>,
    c0: Option<Vec<f64>>,
    ctx0: Vec<f64>,
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
    w_query: Option<Vec<f64>>,
    w_key: Option<Vec<f64>>,
    v: Option<Vec<f64>>,
}

fn arrays(c: &Case, rng: &mut Lcg) -> Arrays {
    let gh = c.mode.gates() * c.h;
    let additive = c.kind == Kind::Additive;
    Arrays {
        y: rng.vec(c.t * c.n * c.e, 1.0),
        memory: rng.vec(c.n * c.s * c.m, 1.0),
        h0: rng.vec(c.n * c.h, 0.5),
        c0: (c.mode == Mode::Lstm).then(|| rng.vec(c.n * c.h, 0.5)),
        ctx0: rng.vec(c.n * c.m, 0.5),
        w_ih: rng.vec(gh * (c.e + c.m), 0.7),
        w_hh: rng.vec(gh * c.h, 0.7),
        b_ih: rng.vec(gh, 0.5),
        b_hh: rng.vec(gh, 0.5),
        w_query: additive.then(|| rng.vec(c.a * c.h, 1.0)),
        w_key: (c.kind != Kind::Dot).then(|| rng.vec(c.a * c.m, 1.0)),
        v: additive.then(|| rng.vec(c.a, 1.0)),
    }
}

fn run(c: &Case, x: &Arrays, lengths: &[usize]) -> DecoderForward<f64> {
    let spec = spec(c, lengths);
    decoder_forward(
        &spec,
        &x.y,
        &x.memory,
        &x.h0,
        x.c0.as_deref(),
        Some(&x.ctx0),
        &weights(x),
        None,
        None,
        None,
    )
    .unwrap()
}

fn spec<'a>(c: &Case, lengths: &'a [usize]) -> DecoderSpec<'a> {
    DecoderSpec {
        mode: c.mode,
        kind: c.kind,
        t: c.t,
        n: c.n,
        s: c.s,
        e: c.e,
        h: c.h,
        m: c.m,
        a: c.a,
        lengths: Some(lengths),
    }
}

fn weights(x: &Arrays) -> DecoderWeights<'_, f64> {
    DecoderWeights {
        w_ih: &x.w_ih,
        w_hh: &x.w_hh,
        b_ih: Some(&x.b_ih),
        b_hh: Some(&x.b_hh),
        attn: AttnWeights {
            w_query: x.w_query.as_deref(),
            w_key: x.w_key.as_deref(),
            v: x.v.as_deref(),
        },
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn gradients_match_central_differences() {
    for mode in [Mode::RnnTanh, Mode::Lstm, Mode::Gru] {
        for kind in [Kind::Additive, Kind::General, Kind::Dot] {
            let (h, m) = (3, if kind == Kind::Dot { 3 } else { 2 });
            let a = match kind {
                Kind::Additive => 2,
                Kind::General => h,
                Kind::Dot => m,
            };
            let c = Case {
                mode,
                kind,
                t: 3,
                n: 2,
                s: 3,
                e: 2,
                h,
                m,
                a,
            };
            let mut rng = Lcg(7);
            let mut x = arrays(&c, &mut rng);
            let lengths = [3, 1];
            let fwd = run(&c, &x, &lengths);
            let r0 = rng.vec(fwd.output.len(), 1.0);
            let r1 = rng.vec(fwd.weights.len(), 1.0);
            let r2 = rng.vec(fwd.h_n.len(), 1.0);
            let loss = |x: &Arrays| {
                let f = run(&c, x, &lengths);
                dot(&r0, &f.output) + dot(&r1, &f.weights) + dot(&r2, &f.h_n)
            };
            let g = decoder_backward(
                &spec(&c, &lengths),
                &weights(&x),
                &fwd.cache,
                &r0,
                Some(&r1),
                Some(&r2),
                None,
            )
            .unwrap();
            let mut check =
                |name: &str, analytic: &[f64], pick: fn(&mut Arrays) -> &mut Vec<f64>| {
                    for (i, &want) in analytic.iter().enumerate() {
                        let old = pick(&mut x)[i];
                        pick(&mut x)[i] = old + 1e-6;
                        let plus = loss(&x);
                        pick(&mut x)[i] = old - 1e-6;
                        let minus = loss(&x);
                        pick(&mut x)[i] = old;
                        let numeric = (plus - minus) / 2e-6;
                        assert!(
                            (numeric - want).abs() < 1e-6,
                            "{mode:?} {kind:?} {name}[{i}]: {numeric} vs {want}"
                        );
                    }
                };
            check("y", &g.dy, |x| &mut x.y);
            check("memory", &g.dmemory, |x| &mut x.memory);
            check("h0", &g.dh0, |x| &mut x.h0);
            check("context0", &g.dcontext0, |x| &mut x.ctx0);
            check("w_ih", &g.dw_ih, |x| &mut x.w_ih);
            check("w_hh", &g.dw_hh, |x| &mut x.w_hh);
            check("b_ih", g.db_ih.as_deref().unwrap(), |x| &mut x.b_ih);
            check("b_hh", g.db_hh.as_deref().unwrap(), |x| &mut x.b_hh);
            if let Some(d) = g.dw_key.as_deref() {
                check("w_key", d, |x| x.w_key.as_mut().unwrap());
            }
            if let Some(d) = g.dw_query.as_deref() {
                check("w_query", d, |x| x.w_query.as_mut().unwrap());
                check("v", g.dv.as_deref().unwrap(), |x| x.v.as_mut().unwrap());
            }
        }
    }
}

#[test]
fn padded_source_steps_get_zero_weight() {
    let c = Case {
        mode: Mode::Gru,
        kind: Kind::Additive,
        t: 2,
        n: 2,
        s: 4,
        e: 1,
        h: 2,
        m: 3,
        a: 2,
    };
    let x = arrays(&c, &mut Lcg(3));
    let f = run(&c, &x, &[4, 2]);
    for t in 0..2 {
        let row = &f.weights[(t * 2 + 1) * 4..][..4];
        assert_eq!(&row[2..], &[0.0, 0.0]);
        assert!((row[0] + row[1] - 1.0).abs() < 1e-15);
    }
}

#[test]
fn bad_sizes_are_errors() {
    let c = Case {
        mode: Mode::Lstm,
        kind: Kind::Dot,
        t: 2,
        n: 1,
        s: 2,
        e: 1,
        h: 2,
        m: 2,
        a: 2,
    };
    let x = arrays(&c, &mut Lcg(5));
    let lengths = [3];
    let err = decoder_forward(
        &spec(&c, &lengths),
        &x.y,
        &x.memory,
        &x.h0,
        x.c0.as_deref(),
        None,
        &weights(&x),
        None,
        None,
        None,
    );
    assert!(err.is_err());
    let lengths = [2];
    let short = &x.memory[1..];
    assert!(decoder_forward(
        &spec(&c, &lengths),
        &x.y,
        short,
        &x.h0,
        x.c0.as_deref(),
        None,
        &weights(&x),
        None,
        None,
        None,
    )
    .is_err());
}

/// `(T, N)` ids in `0..v`, the `(V, E)` table, `y = table[ids]`, the head.
struct SampledCase {
    ids: Vec<usize>,
    embedding: Vec<f64>,
    head_w: Vec<f64>,
    head_b: Vec<f64>,
    v: usize,
}

fn sampled_case(c: &Case, x: &mut Arrays, rng: &mut Lcg) -> SampledCase {
    let v = 5;
    let ids: Vec<usize> = (0..c.t * c.n)
        .map(|_| ((rng.next() + 1.0) * 2.5) as usize % v)
        .collect();
    let embedding = rng.vec(v * c.e, 1.0);
    x.y = embed(&ids, &embedding, c.e);
    SampledCase {
        ids,
        embedding,
        head_w: rng.vec(v * (c.h + c.m), 2.0),
        head_b: rng.vec(v, 0.5),
        v,
    }
}

fn embed(ids: &[usize], table: &[f64], e: usize) -> Vec<f64> {
    ids.iter()
        .flat_map(|&id| table[id * e..][..e].iter().copied())
        .collect()
}

fn run_sampled(
    c: &Case,
    x: &Arrays,
    sc: &SampledCase,
    p: f64,
    lengths: &[usize],
) -> DecoderForward<f64> {
    let smp = Sampling {
        p,
        seed: 11,
        v: sc.v,
        ids: &sc.ids,
        embedding: &sc.embedding,
        head_w: &sc.head_w,
        head_b: Some(&sc.head_b),
    };
    let spec = spec(c, lengths);
    let y = embed(&sc.ids, &sc.embedding, c.e);
    decoder_forward(
        &spec,
        &y,
        &x.memory,
        &x.h0,
        x.c0.as_deref(),
        Some(&x.ctx0),
        &weights(x),
        None,
        None,
        Some(&smp),
    )
    .unwrap()
}

#[test]
fn row_flips_repeat_the_reference_values() {
    // The same numbers are asserted of rnncore.reference.decoder.sampling_flips.
    let cases: [(u64, usize, [f64; 3]); 3] = [
        (
            0,
            0,
            [0.2558852031320078, 0.08832385701148338, 0.29049544614575296],
        ),
        (
            42,
            3,
            [0.5461143526913933, 0.1441401747058797, 0.4130817709598591],
        ),
        (
            u64::MAX,
            1,
            [0.6640231223502573, 0.25864371340938674, 0.7348203861296587],
        ),
    ];
    for (seed, row, want) in cases {
        let mut flips = super::sampling::RowFlips::new(seed, row);
        for w in want {
            assert_eq!(flips.next_unit(), w, "seed {seed} row {row}");
        }
    }
}

#[test]
fn sampling_at_p_zero_is_teacher_forcing_bitwise() {
    let c = Case {
        mode: Mode::Lstm,
        kind: Kind::Additive,
        t: 4,
        n: 3,
        s: 3,
        e: 2,
        h: 3,
        m: 2,
        a: 2,
    };
    let mut rng = Lcg(9);
    let mut x = arrays(&c, &mut rng);
    let sc = sampled_case(&c, &mut x, &mut rng);
    let lengths = [3, 1, 2];
    let teacher = run(&c, &x, &lengths);
    let sampled = run_sampled(&c, &x, &sc, 0.0, &lengths);
    assert_eq!(teacher.output, sampled.output);
    assert_eq!(teacher.cache.gates, sampled.cache.gates);
    assert_eq!(sampled.fed.as_deref(), Some(sc.ids.as_slice()));
    let all = run_sampled(&c, &x, &sc, 1.0, &lengths);
    let fed = all.fed.unwrap();
    assert_ne!(fed, sc.ids, "p = 1 feeds the predictions");
    assert_eq!(
        &fed[..c.n],
        &sc.ids[..c.n],
        "step 0 is always the teacher's"
    );
}

#[test]
fn sampled_gradients_match_central_differences() {
    // The flips and the argmax are constants: the gradient of the embedding is
    // dy scattered into the rows actually fed.
    for (mode, kind) in [(Mode::Lstm, Kind::Additive), (Mode::Gru, Kind::General)] {
        let c = Case {
            mode,
            kind,
            t: 4,
            n: 3,
            s: 3,
            e: 2,
            h: 3,
            m: 2,
            a: if kind == Kind::General { 3 } else { 2 },
        };
        let mut rng = Lcg(21);
        let mut x = arrays(&c, &mut rng);
        let mut sc = sampled_case(&c, &mut x, &mut rng);
        let lengths = [3, 1, 2];
        let fwd = run_sampled(&c, &x, &sc, 0.5, &lengths);
        let fed = fwd.fed.clone().unwrap();
        assert_ne!(fed, sc.ids, "some rows are sampled");
        let r0 = rng.vec(fwd.output.len(), 1.0);
        let g = decoder_backward(
            &spec(&c, &lengths),
            &weights(&x),
            &fwd.cache,
            &r0,
            None,
            None,
            None,
        )
        .unwrap();
        let mut d_embedding = vec![0.0; sc.v * c.e];
        for (i, &id) in fed.iter().enumerate() {
            for j in 0..c.e {
                d_embedding[id * c.e + j] += g.dy[i * c.e + j];
            }
        }
        let loss = |x: &Arrays, sc: &SampledCase| {
            let f = run_sampled(&c, x, sc, 0.5, &lengths);
            assert_eq!(f.fed.as_deref(), Some(fed.as_slice()));
            dot(&r0, &f.output)
        };
        for (i, &want) in d_embedding.iter().enumerate() {
            let old = sc.embedding[i];
            sc.embedding[i] = old + 1e-6;
            let plus = loss(&x, &sc);
            sc.embedding[i] = old - 1e-6;
            let minus = loss(&x, &sc);
            sc.embedding[i] = old;
            let numeric = (plus - minus) / 2e-6;
            assert!((numeric - want).abs() < 1e-6, "{mode:?} embedding[{i}]");
        }
        for (i, &want) in g.dw_ih.iter().enumerate() {
            let old = x.w_ih[i];
            x.w_ih[i] = old + 1e-6;
            let plus = loss(&x, &sc);
            x.w_ih[i] = old - 1e-6;
            let minus = loss(&x, &sc);
            x.w_ih[i] = old;
            let numeric = (plus - minus) / 2e-6;
            assert!((numeric - want).abs() < 1e-6, "{mode:?} w_ih[{i}]");
        }
    }
}

#[test]
fn given_keys_are_the_projected_ones() {
    for kind in [Kind::Additive, Kind::General, Kind::Dot] {
        let (h, m) = (3, if kind == Kind::Dot { 3 } else { 4 });
        let a = match kind {
            Kind::Additive => 2,
            Kind::General => h,
            Kind::Dot => m,
        };
        let c = Case {
            mode: Mode::Lstm,
            kind,
            t: 3,
            n: 2,
            s: 3,
            e: 2,
            h,
            m,
            a,
        };
        let x = arrays(&c, &mut Lcg(11));
        let lengths = vec![c.s; c.n];
        let spec = spec(&c, &lengths);
        let w = weights(&x);
        let keys = crate::seq2seq::project_keys(kind, spec.sizes(), &x.memory, &w.attn).unwrap();
        let call = |keys: Option<&[f64]>| {
            decoder_forward(
                &spec,
                &x.y,
                &x.memory,
                &x.h0,
                x.c0.as_deref(),
                Some(&x.ctx0),
                &w,
                keys,
                None,
                None,
            )
            .unwrap()
        };
        let (own, given) = (call(None), call(Some(&keys)));
        assert_eq!(own.output, given.output);
        assert_eq!(own.weights, given.weights);
        let short = &keys[1..];
        let err = decoder_forward(
            &spec,
            &x.y,
            &x.memory,
            &x.h0,
            x.c0.as_deref(),
            None,
            &w,
            Some(short),
            None,
            None,
        );
        assert!(err.is_err());
    }
}

#[test]
fn prepared_weights_give_the_products_of_the_call() {
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh] {
        let c = Case {
            mode,
            kind: Kind::Additive,
            t: 3,
            n: 5,
            s: 3,
            e: 2,
            h: 3,
            m: 4,
            a: 2,
        };
        let x = arrays(&c, &mut Lcg(13));
        let lengths = vec![c.s; c.n];
        let spec = spec(&c, &lengths);
        let w = weights(&x);
        let gh = mode.gates() * c.h;
        let prepared = super::Prepared::new(&w, gh, c.e, c.h, c.m).unwrap();
        let call = |p: Option<&super::Prepared<f64>>| {
            decoder_forward(
                &spec,
                &x.y,
                &x.memory,
                &x.h0,
                x.c0.as_deref(),
                Some(&x.ctx0),
                &w,
                None,
                p,
                None,
            )
            .unwrap()
        };
        let (own, given) = (call(None), call(Some(&prepared)));
        for (a, b) in own.output.iter().zip(&given.output) {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                "{mode:?}: {a} vs {b}"
            );
        }
        let other = super::Prepared::new(&w, gh, c.e, c.h, c.m).unwrap();
        assert_eq!(call(Some(&other)).output, given.output);
        let wrong = super::Prepared::new(
            &weights(&arrays(&Case { h: 3, ..c }, &mut Lcg(1))),
            gh,
            c.e,
            c.h,
            c.m,
        );
        assert!(wrong.is_ok());
    }
}
