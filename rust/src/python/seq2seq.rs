//! `decoder_forward` and `decoder_backward`: the attention decoder, teacher-forced
//! or with scheduled sampling, with the same signature as
//! `rnncore.reference.decoder_forward`/`_backward` (weights and the sampling
//! inputs in dicts by name). The forward's cache is an opaque
//! `AttentionDecoderCache` that owns what the backward needs.

use numpy::Element;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::arrays::{
    float_enum, int_arg, lengths_arg, on_float, precision, to_numpy, with_float, FloatArg,
};
use super::errors::run_detached;
use crate::error::RnnError;
use crate::mode::Mode;
use crate::real::Real;
use crate::seq2seq::{
    decoder_backward as backward_kernel, decoder_forward as forward_kernel, project_keys,
    AttnSizes, AttnWeights, DecoderCache, DecoderSpec, DecoderWeights, Kind, Prepared, Sampling,
};

const WEIGHT_NAMES: [&str; 7] = ["w_ih", "w_hh", "b_ih", "b_hh", "w_query", "w_key", "v"];
const SAMPLING_NAMES: [&str; 6] = ["p", "seed", "ids", "embedding", "head_weight", "head_bias"];

float_enum!(enum Typed(DecoderCache));

/// What `decoder_forward` saved for `decoder_backward`; opaque.
#[pyclass(module = "rnncore._rnncore", frozen)]
pub struct AttentionDecoderCache {
    sizes: Sizes,
    typed: Typed,
}

float_enum!(enum TypedPrepared(Prepared));

/// The decoder's weights packed once for many one-step calls
/// (`decoder_prepare`); opaque.
#[pyclass(module = "rnncore._rnncore", frozen)]
pub struct DecoderPrepared {
    mode: Mode,
    typed: TypedPrepared,
}

/// `(mode, kind, T, N, S, E, H, M, A)` of the call that made a cache.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Sizes {
    mode: Mode,
    kind: Kind,
    dims: [usize; 7],
}

impl Sizes {
    fn spec<'a>(&self, lengths: &'a [usize]) -> DecoderSpec<'a> {
        let [t, n, s, e, h, m, a] = self.dims;
        DecoderSpec {
            mode: self.mode,
            kind: self.kind,
            t,
            n,
            s,
            e,
            h,
            m,
            a,
            lengths: Some(lengths),
        }
    }
}

/// The weights of one call, borrowed by name from the dict.
struct WeightArgs<'py, F: Element> {
    args: Vec<Option<FloatArg<'py, F>>>, // in the order of WEIGHT_NAMES
}

impl<'py, F: Real + Element> WeightArgs<'py, F> {
    fn extract(weights: &Bound<'py, PyAny>) -> Result<Self, RnnError> {
        let dict = weights
            .cast::<PyDict>()
            .map_err(|_| RnnError::dtype("weights", "must be a dict of arrays by name"))?;
        for key in dict.keys() {
            let name: String = key.extract().unwrap_or_default();
            if !WEIGHT_NAMES.contains(&name.as_str()) {
                return Err(RnnError::argument(
                    "weights",
                    format!("unknown decoder weight {name:?}"),
                ));
            }
        }
        let mut args = Vec::with_capacity(WEIGHT_NAMES.len());
        for name in WEIGHT_NAMES {
            let item = dict.get_item(name).ok().flatten();
            args.push(FloatArg::<F>::extract_opt(item.as_ref(), name)?);
        }
        Ok(Self { args })
    }

    fn get(&self, i: usize) -> Option<&FloatArg<'py, F>> {
        self.args[i].as_ref()
    }

    /// `w_hh (G*H, H)` gives `H`; the attention's key width `A`.
    fn sizes(&self, kind: Kind, m: usize) -> Result<(usize, usize), RnnError> {
        let w_hh = self
            .get(1)
            .ok_or_else(|| RnnError::argument("w_hh", "is required"))?;
        let h = w_hh.dims(2, "(G*H, H)")?[1];
        let a = match (kind, self.get(6)) {
            (Kind::Additive, Some(v)) => v.dims(1, "(A,)")?[0],
            (Kind::Additive, None) => return Err(RnnError::argument("v", "additive needs v")),
            (Kind::General, _) => h,
            (Kind::Dot, _) => m,
        };
        Ok((h, a))
    }

    /// Every weight given has the shape the sizes of the call ask for.
    fn check_shapes(&self, sizes: &Sizes) -> Result<(), RnnError> {
        let [_, _, _, e, h, m, a] = sizes.dims;
        let gh = sizes.mode.gates() * h;
        let shapes: [(usize, &[usize], &str); 7] = [
            (0, &[gh, e + m], "(G*H, E + M)"),
            (1, &[gh, h], "(G*H, H)"),
            (2, &[gh], "(G*H,)"),
            (3, &[gh], "(G*H,)"),
            (4, &[a, h], "(A, H)"),
            (5, &[a, m], "(A, M)"),
            (6, &[a], "(A,)"),
        ];
        for (i, shape, meaning) in shapes {
            if let Some(arg) = self.get(i) {
                arg.expect(shape, meaning)?;
            }
        }
        Ok(())
    }
}

/// The scheduled-sampling inputs of one call, copied or borrowed from the dict.
struct SamplingArgs<'py, F: Element> {
    p: f64,
    seed: u64,
    v: usize,
    ids: Vec<usize>,             // (T, N)
    embedding: FloatArg<'py, F>, // (V, E)
    head_w: FloatArg<'py, F>,    // (V, H + M)
    head_b: Option<FloatArg<'py, F>>,
}

impl<'py, F: Real + Element> SamplingArgs<'py, F> {
    /// Read the dict against the call's `T, N, E` and `H + M`.
    fn extract(obj: &Bound<'py, PyAny>, dims: [usize; 4]) -> Result<Self, RnnError> {
        let [t, n, e, hm] = dims;
        let dict = obj
            .cast::<PyDict>()
            .map_err(|_| RnnError::dtype("sampling", "must be a dict by name"))?;
        for key in dict.keys() {
            let name: String = key.extract().unwrap_or_default();
            if !SAMPLING_NAMES.contains(&name.as_str()) {
                return Err(RnnError::argument(
                    "sampling",
                    format!("unknown sampling input {name:?}"),
                ));
            }
        }
        let item = |name: &str| dict.get_item(name).ok().flatten().filter(|o| !o.is_none());
        let need = |name: &'static str| {
            item(name).ok_or_else(|| RnnError::argument(name, "is required for sampling"))
        };
        let p: f64 = need("p")?
            .extract()
            .map_err(|_| RnnError::dtype("p", "must be a float"))?;
        let seed: u64 = need("seed")?
            .extract()
            .map_err(|_| RnnError::argument("seed", "must be an integer in 0..2**64-1"))?;
        let embedding = FloatArg::<F>::extract(&need("embedding")?, "embedding")?;
        let v = embedding.dims(2, "(V, E)")?[0];
        embedding.expect(&[v, e], "(V, E) with E from y")?;
        let head_w = FloatArg::<F>::extract(&need("head_weight")?, "head_weight")?;
        head_w.expect(&[v, hm], "(V, H + M) with V from embedding")?;
        let head_b = FloatArg::<F>::extract_opt(item("head_bias").as_ref(), "head_bias")?;
        if let Some(b) = &head_b {
            b.expect(&[v], "(V,)")?;
        }
        let (ids, shape) = int_arg(&need("ids")?, "ids", 2, v)?;
        if shape != [t, n] {
            return Err(RnnError::shape(
                "ids",
                format!("must have shape ({t}, {n}) = (T, N) with T, N from y, got {shape:?}"),
            ));
        }
        Ok(Self {
            p,
            seed,
            v,
            ids,
            embedding,
            head_w,
            head_b,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_typed<'py, F: Real + Element>(
    py: Python<'py>,
    mode: Mode,
    kind: Kind,
    y: &Bound<'py, PyAny>,
    memory: &Bound<'py, PyAny>,
    lengths: Option<&Bound<'py, PyAny>>,
    h0: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    weights: &Bound<'py, PyAny>,
    context0: Option<&Bound<'py, PyAny>>,
    sampling: Option<&Bound<'py, PyAny>>,
    keys: Option<&Bound<'py, PyAny>>,
    prepared: Option<&Prepared<F>>,
) -> PyResult<Bound<'py, PyTuple>>
where
    Typed: From<DecoderCache<F>>,
{
    let y = FloatArg::<F>::extract(y, "y")?;
    let [t, n, e] = <[usize; 3]>::try_from(y.dims(3, "(T, N, E)")?).unwrap_or_default();
    let memory = FloatArg::<F>::extract(memory, "memory")?;
    let ms = memory.dims(3, "(N, S, M)")?.to_vec();
    let (s, m) = (ms[1], ms[2]);
    memory.expect(&[n, s, m], "(N, S, M) with N from y")?;
    let w = WeightArgs::<F>::extract(weights)?;
    let (h, a) = w.sizes(kind, m)?;
    let h0 = FloatArg::<F>::extract(h0, "h0")?;
    h0.expect(&[n, h], "(N, H) with N from y, H from w_hh")?;
    let c0 = FloatArg::<F>::extract_opt(c0, "c0")?;
    if let Some(c0) = &c0 {
        c0.expect(&[n, h], "(N, H)")?;
    }
    let context0 = FloatArg::<F>::extract_opt(context0, "context0")?;
    if let Some(c) = &context0 {
        c.expect(&[n, m], "(N, M)")?;
    }
    let lengths = lengths_arg(lengths)?.unwrap_or_else(|| vec![s; n]);
    let sizes = Sizes {
        mode,
        kind,
        dims: [t, n, s, e, h, m, a],
    };
    w.check_shapes(&sizes)?;
    let keys = FloatArg::<F>::extract_opt(keys, "keys")?;
    if let Some(k) = &keys {
        k.expect(&[n, s, a], "(N, S, A): decoder_keys of memory")?;
    }
    let keys_d = keys.as_ref().map(|k| k.data());
    let sampling = sampling
        .filter(|o| !o.is_none())
        .map(|o| SamplingArgs::<F>::extract(o, [t, n, e, h + m]))
        .transpose()?;
    let smp_d = sampling.as_ref().map(|smp| {
        (
            (smp.p, smp.seed, smp.v, smp.ids.as_slice()),
            smp.embedding.data(),
            smp.head_w.data(),
            smp.head_b.as_ref().map(|b| b.data()),
        )
    });
    let data: Vec<_> = (0..WEIGHT_NAMES.len())
        .map(|i| w.get(i).map(|a| a.data()))
        .collect();
    let (y_d, mem_d, h0_d, c0_d) = (
        y.data(),
        memory.data(),
        h0.data(),
        c0.as_ref().map(|a| a.data()),
    );
    let ctx_d = context0.as_ref().map(|a| a.data());
    let out = run_detached(py, || {
        let dw = decoder_weights(&data)?;
        let smp = smp_d
            .as_ref()
            .map(|((p, seed, v, ids), emb, head_w, head_b)| Sampling {
                p: *p,
                seed: *seed,
                v: *v,
                ids,
                embedding: emb,
                head_w,
                head_b: head_b.as_deref(),
            });
        forward_kernel(
            &sizes.spec(&lengths),
            &y_d,
            &mem_d,
            &h0_d,
            c0_d.as_deref(),
            ctx_d.as_deref(),
            &dw,
            keys_d.as_deref(),
            prepared,
            smp.as_ref(),
        )
    })?;
    let c_n = out.c_n.map(|c| to_numpy(py, c, &[n, h])).transpose()?;
    let cache = AttentionDecoderCache {
        sizes,
        typed: Typed::from(out.cache),
    };
    let mut items = vec![
        to_numpy(py, out.output, &[t, n, h + m])?.into_any(),
        to_numpy(py, out.weights, &[t, n, s])?.into_any(),
        to_numpy(py, out.h_n, &[n, h])?.into_any(),
        c_n.into_pyobject(py)?.into_any(),
        Bound::new(py, cache)?.into_any(),
    ];
    if let Some(fed) = out.fed {
        let fed: Vec<i64> = fed.into_iter().map(|id| id as i64).collect();
        items.push(to_numpy(py, fed, &[t, n])?.into_any());
    }
    PyTuple::new(py, items)
}

/// The kernel's weights from the borrowed arrays, in the order of WEIGHT_NAMES.
fn decoder_weights<'a, F: Real>(
    data: &'a [Option<std::borrow::Cow<'a, [F]>>],
) -> Result<DecoderWeights<'a, F>, RnnError> {
    let get = |i: usize| data[i].as_deref();
    Ok(DecoderWeights {
        w_ih: get(0).ok_or_else(|| RnnError::argument("w_ih", "is required"))?,
        w_hh: get(1).ok_or_else(|| RnnError::argument("w_hh", "is required"))?,
        b_ih: get(2),
        b_hh: get(3),
        attn: AttnWeights {
            w_query: get(4),
            w_key: get(5),
            v: get(6),
        },
    })
}

#[allow(clippy::too_many_arguments)]
fn backward_typed<'py, F: Real + Element>(
    py: Python<'py>,
    sizes: Sizes,
    cache: &DecoderCache<F>,
    weights: &Bound<'py, PyAny>,
    d_output: &Bound<'py, PyAny>,
    d_h_n: Option<&Bound<'py, PyAny>>,
    d_c_n: Option<&Bound<'py, PyAny>>,
    d_weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let [t, n, s, e, h, m, a] = sizes.dims;
    let gh = sizes.mode.gates() * h;
    let w = WeightArgs::<F>::extract(weights)?;
    w.check_shapes(&sizes)?;
    let d_output = FloatArg::<F>::extract(d_output, "d_output")?;
    d_output.expect(&[t, n, h + m], "(T, N, H + M)")?;
    let d_h_n = FloatArg::<F>::extract_opt(d_h_n, "d_h_n")?;
    let d_c_n = FloatArg::<F>::extract_opt(d_c_n, "d_c_n")?;
    for g in d_h_n.iter().chain(d_c_n.iter()) {
        g.expect(&[n, h], "(N, H)")?;
    }
    let d_weights = FloatArg::<F>::extract_opt(d_weights, "d_weights")?;
    if let Some(g) = &d_weights {
        g.expect(&[t, n, s], "(T, N, S)")?;
    }
    let data: Vec<_> = (0..WEIGHT_NAMES.len())
        .map(|i| w.get(i).map(|a| a.data()))
        .collect();
    let (dy_d, dh_d, dc_d, dw_d) = (
        d_output.data(),
        d_h_n.as_ref().map(|a| a.data()),
        d_c_n.as_ref().map(|a| a.data()),
        d_weights.as_ref().map(|a| a.data()),
    );
    let g = run_detached(py, || {
        let dw = decoder_weights(&data)?;
        let spec = sizes.spec(&cache.lengths);
        backward_kernel(
            &spec,
            &dw,
            cache,
            &dy_d,
            dw_d.as_deref(),
            dh_d.as_deref(),
            dc_d.as_deref(),
        )
    })?;
    let grads = PyDict::new(py);
    let opt = |v: Option<Vec<F>>, shape: &[usize]| v.map(|v| to_numpy(py, v, shape)).transpose();
    grads.set_item("y", to_numpy(py, g.dy, &[t, n, e])?)?;
    grads.set_item("memory", to_numpy(py, g.dmemory, &[n, s, m])?)?;
    grads.set_item("h0", to_numpy(py, g.dh0, &[n, h])?)?;
    grads.set_item("c0", opt(g.dc0, &[n, h])?)?;
    grads.set_item("context0", to_numpy(py, g.dcontext0, &[n, m])?)?;
    grads.set_item("w_ih", to_numpy(py, g.dw_ih, &[gh, e + m])?)?;
    grads.set_item("w_hh", to_numpy(py, g.dw_hh, &[gh, h])?)?;
    grads.set_item("b_ih", opt(g.db_ih, &[gh])?)?;
    grads.set_item("b_hh", opt(g.db_hh, &[gh])?)?;
    grads.set_item("w_query", opt(g.dw_query, &[a, h])?)?;
    grads.set_item("w_key", opt(g.dw_key, &[a, m])?)?;
    grads.set_item("v", opt(g.dv, &[a])?)?;
    Ok(grads)
}

/// The attention decoder over a whole target sequence, teacher-forced or with
/// scheduled sampling (see the stub).
#[pyfunction]
#[pyo3(signature = (mode, attention, y, memory, lengths, h0, c0, weights, context0=None, sampling=None, keys=None, prepared=None))]
#[allow(clippy::too_many_arguments)]
pub fn decoder_forward<'py>(
    py: Python<'py>,
    mode: &str,
    attention: &str,
    y: &Bound<'py, PyAny>,
    memory: &Bound<'py, PyAny>,
    lengths: Option<&Bound<'py, PyAny>>,
    h0: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    weights: &Bound<'py, PyAny>,
    context0: Option<&Bound<'py, PyAny>>,
    sampling: Option<&Bound<'py, PyAny>>,
    keys: Option<&Bound<'py, PyAny>>,
    prepared: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (mode, kind) = (Mode::from_name(mode)?, Kind::from_name(attention)?);
    let prepared = prepared
        .filter(|p| !p.is_none())
        .map(|p| {
            p.cast::<DecoderPrepared>()
                .map(|b| b.get())
                .map_err(|_| RnnError::dtype("prepared", "must come from decoder_prepare"))
        })
        .transpose()?;
    if let Some(p) = prepared {
        if p.mode != mode {
            return Err(RnnError::argument(
                "prepared",
                format!("was made for {}, not {}", p.mode.name(), mode.name()),
            )
            .into());
        }
    }
    let dict = weights
        .cast::<PyDict>()
        .map_err(|_| RnnError::dtype("weights", "must be a dict of arrays by name"))?;
    // Without a w_ih (an error the weights' extraction reports), `y` stands in.
    let w_ih = dict.get_item("w_ih")?.filter(|w| !w.is_none());
    let (source, name) = match &w_ih {
        Some(w) => (w, "w_ih"),
        None => (y, "y"),
    };
    with_float!(precision(py, source, name)?, F => {
        let prepared = prepared
            .map(|p| <&Prepared<F>>::try_from(&p.typed))
            .transpose()
            .map_err(|()| RnnError::dtype("prepared", "was made for the other float dtype"))?;
        forward_typed::<F>(
            py, mode, kind, y, memory, lengths, h0, c0, weights, context0, sampling, keys, prepared,
        )
    })
}

/// Backpropagation through time for one `decoder_forward` call (see the stub).
#[pyfunction]
#[pyo3(signature = (mode, attention, weights, cache, d_output, d_h_n=None, d_c_n=None, d_weights=None))]
#[allow(clippy::too_many_arguments)]
pub fn decoder_backward<'py>(
    py: Python<'py>,
    mode: &str,
    attention: &str,
    weights: &Bound<'py, PyAny>,
    cache: &Bound<'py, PyAny>,
    d_output: &Bound<'py, PyAny>,
    d_h_n: Option<&Bound<'py, PyAny>>,
    d_c_n: Option<&Bound<'py, PyAny>>,
    d_weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mode, kind) = (Mode::from_name(mode)?, Kind::from_name(attention)?);
    let cache = cache
        .cast::<AttentionDecoderCache>()
        .map_err(|_| RnnError::dtype("cache", "must be the cache that decoder_forward returned"))?;
    let cache = cache.get();
    if cache.sizes.mode != mode || cache.sizes.kind != kind {
        return Err(RnnError::argument("cache", "was made with another mode or attention").into());
    }
    on_float!(Typed, &cache.typed, |c| {
        backward_typed(
            py,
            cache.sizes,
            c,
            weights,
            d_output,
            d_h_n,
            d_c_n,
            d_weights,
        )
    })
}

fn keys_typed<'py, F: Real + Element>(
    py: Python<'py>,
    kind: Kind,
    memory: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let memory = FloatArg::<F>::extract(memory, "memory")?;
    let ms = memory.dims(3, "(N, S, M)")?.to_vec();
    let (n, s, m) = (ms[0], ms[1], ms[2]);
    let w = WeightArgs::<F>::extract(weights)?;
    let w_key = w.get(5);
    let a = match (kind, w_key) {
        (Kind::Dot, _) => m,
        (_, Some(k)) => k.dims(2, "(A, M)")?[0],
        (_, None) => return Err(RnnError::argument("w_key", "is required").into()),
    };
    if let Some(k) = w_key {
        k.expect(&[a, m], "(A, M) with M from memory")?;
    }
    let (mem_d, key_d) = (memory.data(), w_key.map(|k| k.data()));
    let z = AttnSizes { n, s, m, q: 0, a };
    let keys = run_detached(py, || {
        let attn = AttnWeights {
            w_query: None,
            w_key: if kind == Kind::Dot {
                None
            } else {
                key_d.as_deref()
            },
            v: None,
        };
        project_keys(kind, z, &mem_d, &attn)
    })?;
    Ok(to_numpy(py, keys, &[n, s, a])?.into_any())
}

/// The keys `(N, S, A)` the attention projects `memory (N, S, M)` to (the memory
/// itself for dot), to pass to `decoder_forward(keys=...)` (see the stub).
#[pyfunction]
pub fn decoder_keys<'py>(
    py: Python<'py>,
    attention: &str,
    memory: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = Kind::from_name(attention)?;
    with_float!(precision(py, memory, "memory")?, F => keys_typed::<F>(py, kind, memory, weights))
}

fn prepare_typed<F: Real + Element>(
    py: Python<'_>,
    mode: Mode,
    kind: Kind,
    weights: &Bound<'_, PyAny>,
    e: usize,
    m: usize,
) -> PyResult<Prepared<F>> {
    let w = WeightArgs::<F>::extract(weights)?;
    let (h, a) = w.sizes(kind, m)?;
    let sizes = Sizes {
        mode,
        kind,
        dims: [1, 1, 1, e, h, m, a],
    };
    w.check_shapes(&sizes)?;
    let data: Vec<_> = (0..WEIGHT_NAMES.len())
        .map(|i| w.get(i).map(|a| a.data()))
        .collect();
    let gh = mode.gates() * h;
    run_detached(py, || {
        let dw = decoder_weights(&data)?;
        Prepared::new(&dw, gh, e, h, m)
    })
}

/// The decoder's weights packed once for many one-step `decoder_forward` calls
/// (see the stub).
#[pyfunction]
pub fn decoder_prepare<'py>(
    py: Python<'py>,
    mode: &str,
    attention: &str,
    weights: &Bound<'py, PyAny>,
    input_size: usize,
    memory_size: usize,
) -> PyResult<Bound<'py, DecoderPrepared>> {
    let (mode, kind) = (Mode::from_name(mode)?, Kind::from_name(attention)?);
    let dict = weights
        .cast::<PyDict>()
        .map_err(|_| RnnError::dtype("weights", "must be a dict of arrays by name"))?;
    let w_ih = dict
        .get_item("w_ih")?
        .filter(|w| !w.is_none())
        .ok_or_else(|| RnnError::argument("w_ih", "is required"))?;
    let (e, m) = (input_size, memory_size);
    let typed = with_float!(precision(py, &w_ih, "w_ih")?, F => {
        TypedPrepared::from(prepare_typed::<F>(py, mode, kind, weights, e, m)?)
    });
    Bound::new(py, DecoderPrepared { mode, typed })
}
