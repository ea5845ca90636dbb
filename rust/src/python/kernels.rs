//! `forward`, `backward` and `gate_count`: convert and validate the arguments,
//! release the GIL, call the kernel, hand the results to NumPy.
//!
//! Signatures and shapes are documented in `python/rnncore/_rnncore.pyi`.

use std::borrow::Cow;

use numpy::Element;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::arrays::{lengths_arg, precision, to_numpy, with_float, FloatArg};
use super::errors::run_detached;
use crate::error::RnnError;
use crate::mode::Mode;
use crate::real::Real;
use crate::sequence::{self, CacheRef, Dims, Noise, Spec, Weights};

/// The arrays every call takes, borrowed and shape-checked against `x (T, N, D)`
/// and `H` (from `h0` in the forward, from `w_hh` in the backward; from
/// `w_hr (P, H)` with a projection, whose `P` is then the width of `h`).
struct Layer<'py, F: Element> {
    dims: Dims,
    x: FloatArg<'py, F>,
    w_ih: FloatArg<'py, F>,
    w_hh: FloatArg<'py, F>,
    b_ih: Option<FloatArg<'py, F>>,
    b_hh: Option<FloatArg<'py, F>>,
    w_peep: Option<FloatArg<'py, F>>,
    w_ln: Option<FloatArg<'py, F>>,
    b_ln: Option<FloatArg<'py, F>>,
    w_hr: Option<FloatArg<'py, F>>,
}

impl<'py, F: Real + Element> Layer<'py, F> {
    #[allow(clippy::too_many_arguments)]
    fn extract(
        mode: Mode,
        x: &Bound<'py, PyAny>,
        h: Option<usize>,
        w_ih: &Bound<'py, PyAny>,
        w_hh: &Bound<'py, PyAny>,
        b_ih: Option<&Bound<'py, PyAny>>,
        b_hh: Option<&Bound<'py, PyAny>>,
        extra: [Option<&Bound<'py, PyAny>>; 4],
    ) -> Result<Self, RnnError> {
        let [w_peep, w_hr, w_ln, b_ln] = extra;
        let x = FloatArg::<F>::extract(x, "x")?;
        let xs = x.dims(3, "(T, N, D)")?;
        let (t, n, d) = (xs[0], xs[1], xs[2]);
        let w_hh = FloatArg::<F>::extract(w_hh, "w_hh")?;
        let ws = w_hh.dims(2, "(G*H, H)")?;
        let w_hr = FloatArg::<F>::extract_opt(w_hr, "w_hr")?;
        // With a projection w_hr (P, H) gives both sizes; h (h0, w_hh's columns) has P.
        let (h, p) = match &w_hr {
            Some(w) => {
                let s = w.dims(2, "(P, H)")?;
                if mode != Mode::Lstm || s[0] == 0 {
                    return Err(RnnError::argument(
                        "w_hr",
                        format!(
                            "only lstm has a projection, and w_hr (P, H) needs P >= 1; \
                             got mode {} and w_hr of shape {s:?} (pass None for no projection)",
                            mode.name()
                        ),
                    ));
                }
                (s[1], s[0])
            }
            None => (h.unwrap_or(ws[1]), 0),
        };
        // Rows of w_ih and w_hh: G*H, fewer for the MUTs (Mode::ih_blocks, hh_blocks).
        let rows = |blocks: usize| {
            blocks
                .checked_mul(h)
                .ok_or_else(|| RnnError::shape("h0", "hidden size is too large"))
        };
        let (ih, hh) = (rows(mode.ih_blocks())?, rows(mode.hh_blocks())?);
        if w_hr.is_some() {
            w_hh.expect(&[hh, p], "(4*H, P) with P, H from w_hr (P, H)")?;
        } else {
            w_hh.expect(&[hh, h], "(G*H, H)")?;
        }
        let w_ih = FloatArg::<F>::extract(w_ih, "w_ih")?;
        w_ih.expect(&[ih, d], "(G*H, D)")?;
        let b_ih = FloatArg::<F>::extract_opt(b_ih, "b_ih")?;
        let b_hh = FloatArg::<F>::extract_opt(b_hh, "b_hh")?;
        if let Some(b) = &b_ih {
            b.expect(&[ih], "(G*H,)")?;
        }
        if let Some(b) = &b_hh {
            b.expect(&[hh], "(G*H,)")?;
        }
        let w_peep = FloatArg::<F>::extract_opt(w_peep, "w_peep")?;
        if let Some(p) = &w_peep {
            let three_h = h
                .checked_mul(3)
                .ok_or_else(|| RnnError::shape("w_peep", "hidden size is too large"))?;
            p.expect(&[three_h], "(3*H,)")?;
        }
        let w_ln = FloatArg::<F>::extract_opt(w_ln, "w_ln")?;
        let b_ln = FloatArg::<F>::extract_opt(b_ln, "b_ln")?;
        if mode.has_layer_norm() {
            // (A mode without layer normalisation given them: the kernel says so.)
            let len = h
                .checked_mul(mode.layer_norm_blocks())
                .ok_or_else(|| RnnError::shape("w_ln", "hidden size is too large"))?;
            for p in w_ln.iter().chain(b_ln.iter()) {
                p.expect(&[len], "(B*H,), B = 9 for lstm_ln, 6 for gru_ln")?;
            }
        }
        Ok(Self {
            dims: Dims { t, n, d, h, p },
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            w_peep,
            w_hr,
            w_ln,
            b_ln,
        })
    }
}

/// The dropout masks of a call ([`Noise`]), shape-checked: `recurrent_mask (N,
/// H)`, `zoneout_h` and `zoneout_c (T, N, H)`.
struct Masks<'py, F: Element> {
    recurrent: Option<FloatArg<'py, F>>,
    zoneout_h: Option<FloatArg<'py, F>>,
    zoneout_c: Option<FloatArg<'py, F>>,
}

impl<'py, F: Real + Element> Masks<'py, F> {
    fn extract(dims: Dims, masks: [Option<&Bound<'py, PyAny>>; 3]) -> Result<Self, RnnError> {
        let Dims { t, n, h, .. } = dims;
        let [recurrent, zoneout_h, zoneout_c] = masks;
        let recurrent = FloatArg::<F>::extract_opt(recurrent, "recurrent_mask")?;
        if let Some(m) = &recurrent {
            m.expect(&[n, h], "(N, H)")?;
        }
        let zoneout_h = FloatArg::<F>::extract_opt(zoneout_h, "zoneout_h")?;
        let zoneout_c = FloatArg::<F>::extract_opt(zoneout_c, "zoneout_c")?;
        for z in zoneout_h.iter().chain(zoneout_c.iter()) {
            z.expect(&[t, n, h], "(T, N, H)")?;
        }
        Ok(Self {
            recurrent,
            zoneout_h,
            zoneout_c,
        })
    }
    /// The arrays' data: `recurrent, zoneout_h, zoneout_c`.
    fn data(&self) -> [Option<Cow<'_, [F]>>; 3] {
        [&self.recurrent, &self.zoneout_h, &self.zoneout_c].map(|a| a.as_ref().map(|a| a.data()))
    }
}

/// The kernels' view of [`Masks::data`].
fn noise_of<'a, F: Clone>(d: &'a [Option<Cow<'a, [F]>>; 3]) -> Noise<'a, F> {
    Noise {
        recurrent: d[0].as_deref(),
        zoneout_h: d[1].as_deref(),
        zoneout_c: d[2].as_deref(),
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_typed<'py, F: Real + Element>(
    py: Python<'py>,
    mode: Mode,
    x: &Bound<'py, PyAny>,
    h0: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    w_ih: &Bound<'py, PyAny>,
    w_hh: &Bound<'py, PyAny>,
    b_ih: Option<&Bound<'py, PyAny>>,
    b_hh: Option<&Bound<'py, PyAny>>,
    lengths: Option<&Bound<'py, PyAny>>,
    reverse: bool,
    extra: [Option<&Bound<'py, PyAny>>; 4],
    masks: [Option<&Bound<'py, PyAny>>; 3],
    keep: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let h0 = FloatArg::<F>::extract(h0, "h0")?;
    let h0s = h0.dims(2, "(N, H)")?.to_vec();
    let layer = Layer::<F>::extract(mode, x, Some(h0s[1]), w_ih, w_hh, b_ih, b_hh, extra)?;
    let Dims { t, n, h, p, .. } = layer.dims;
    if p > 0 {
        h0.expect(&[n, p], "(N, P) with N from x, P from w_hr (P, H)")?;
    } else {
        h0.expect(&[n, h], "(N, H) with N from x")?;
    }
    let hs = if p > 0 { p } else { h }; // width of h
    let c0 = FloatArg::<F>::extract_opt(c0, "c0")?;
    if let Some(c0) = &c0 {
        c0.expect(&[n, h], "(N, H)")?;
    }
    let lengths = lengths_arg(lengths)?;
    let masks = Masks::<F>::extract(layer.dims, masks)?;
    let spec = Spec {
        mode,
        dims: layer.dims,
        lengths: lengths.as_deref(),
        reverse,
    };
    let (x_d, h0_d, c0_d) = (layer.x.data(), h0.data(), c0.as_ref().map(|a| a.data()));
    let (w_ih_d, w_hh_d) = (layer.w_ih.data(), layer.w_hh.data());
    let (b_ih_d, b_hh_d) = (
        layer.b_ih.as_ref().map(|a| a.data()),
        layer.b_hh.as_ref().map(|a| a.data()),
    );
    let w_peep_d = layer.w_peep.as_ref().map(|a| a.data());
    let (w_ln_d, b_ln_d) = (
        layer.w_ln.as_ref().map(|a| a.data()),
        layer.b_ln.as_ref().map(|a| a.data()),
    );
    let w_hr_d = layer.w_hr.as_ref().map(|a| a.data());
    let weights = Weights {
        w_ih: &w_ih_d,
        w_hh: &w_hh_d,
        b_ih: b_ih_d.as_deref(),
        b_hh: b_hh_d.as_deref(),
        w_peep: w_peep_d.as_deref(),
        w_hr: w_hr_d.as_deref(),
        w_ln: w_ln_d.as_deref(),
        b_ln: b_ln_d.as_deref(),
    };
    let masks_d = masks.data();
    let noise = noise_of(&masks_d);
    if !keep {
        let out = run_detached(py, || {
            sequence::infer_with(&spec, &x_d, &h0_d, c0_d.as_deref(), &weights, &noise)
        })?;
        let c_n = out.c_n.map(|c| to_numpy(py, c, &[n, h])).transpose()?;
        let none = py.None().into_bound(py);
        return (
            to_numpy(py, out.output, &[t, n, hs])?,
            to_numpy(py, out.h_n, &[n, hs])?,
            c_n,
            none,
        )
            .into_pyobject(py);
    }
    let out = run_detached(py, || {
        sequence::forward_with(&spec, &x_d, &h0_d, c0_d.as_deref(), &weights, &noise)
    })?;

    let gh = spec.gh();
    let cache = PyDict::new(py);
    cache.set_item("gates", to_numpy(py, out.cache.gates, &[t, n, gh])?)?;
    cache.set_item("states", to_numpy(py, out.cache.states, &[t + 1, n, hs])?)?;
    if let Some(cells) = out.cache.cells {
        cache.set_item("cells", to_numpy(py, cells, &[t + 1, n, h])?)?;
    }
    if let Some(hn) = out.cache.hn {
        cache.set_item("hn", to_numpy(py, hn, &[t, n, h])?)?;
    }
    if let Some(proj) = out.cache.proj {
        cache.set_item("proj", to_numpy(py, proj, &[t, n, h])?)?;
    }
    if let Some(c) = out.cache.cells_new {
        cache.set_item("cells_new", to_numpy(py, c, &[t, n, h])?)?;
    }
    if let Some(c) = out.cache.norm {
        cache.set_item("ln_x", to_numpy(py, c.x_hat, &[t, n, gh])?)?;
        cache.set_item("ln_h", to_numpy(py, c.h_hat, &[t, n, gh])?)?;
        if mode.has_cell_state() {
            cache.set_item("ln_c", to_numpy(py, c.c_hat, &[t, n, h])?)?;
        }
        cache.set_item("ln_rstd", to_numpy(py, c.rstd, &[3, t, n])?)?;
    }
    let c_n = out.c_n.map(|c| to_numpy(py, c, &[n, h])).transpose()?;
    (
        to_numpy(py, out.output, &[t, n, hs])?,
        to_numpy(py, out.h_n, &[n, hs])?,
        c_n,
        cache,
    )
        .into_pyobject(py)
}

/// One array of the forward's cache, shape-checked.
fn cache_entry<'py, F: Real + Element>(
    cache: &Bound<'py, PyDict>,
    key: &str,
    name: &'static str,
    shape: &[usize],
) -> PyResult<Option<FloatArg<'py, F>>> {
    let Some(obj) = cache.get_item(key)? else {
        return Ok(None);
    };
    let arg = FloatArg::<F>::extract(&obj, name)?;
    arg.expect(shape, "what the forward returned")?;
    Ok(Some(arg))
}

#[allow(clippy::too_many_arguments)]
fn backward_typed<'py, F: Real + Element>(
    py: Python<'py>,
    mode: Mode,
    x: &Bound<'py, PyAny>,
    w_ih: &Bound<'py, PyAny>,
    w_hh: &Bound<'py, PyAny>,
    b_ih: Option<&Bound<'py, PyAny>>,
    b_hh: Option<&Bound<'py, PyAny>>,
    lengths: Option<&Bound<'py, PyAny>>,
    reverse: bool,
    cache: &Bound<'py, PyAny>,
    d_output: &Bound<'py, PyAny>,
    d_h_n: Option<&Bound<'py, PyAny>>,
    d_c_n: Option<&Bound<'py, PyAny>>,
    extra: [Option<&Bound<'py, PyAny>>; 4],
    masks: [Option<&Bound<'py, PyAny>>; 3],
) -> PyResult<Bound<'py, PyTuple>> {
    let layer = Layer::<F>::extract(mode, x, None, w_ih, w_hh, b_ih, b_hh, extra)?;
    let masks = Masks::<F>::extract(layer.dims, masks)?;
    let Dims { t, n, d, h, p } = layer.dims;
    let hs = if p > 0 { p } else { h }; // width of h
    let gh = mode.gates() * h;
    let cache = cache
        .cast::<PyDict>()
        .map_err(|_| RnnError::dtype("cache", "must be the dict that forward returned"))?;
    let missing = |key: &str| RnnError::argument("cache", format!("has no '{key}' entry"));
    let gates = cache_entry::<F>(cache, "gates", "cache['gates']", &[t, n, gh])?
        .ok_or_else(|| missing("gates"))?;
    let states = cache_entry::<F>(cache, "states", "cache['states']", &[t + 1, n, hs])?
        .ok_or_else(|| missing("states"))?;
    let cells = cache_entry::<F>(cache, "cells", "cache['cells']", &[t + 1, n, h])?;
    let hn = cache_entry::<F>(cache, "hn", "cache['hn']", &[t, n, h])?;
    let cells_new = cache_entry::<F>(cache, "cells_new", "cache['cells_new']", &[t, n, h])?;
    let ln = [
        cache_entry::<F>(cache, "ln_x", "cache['ln_x']", &[t, n, gh])?,
        cache_entry::<F>(cache, "ln_h", "cache['ln_h']", &[t, n, gh])?,
        cache_entry::<F>(cache, "ln_c", "cache['ln_c']", &[t, n, h])?,
        cache_entry::<F>(cache, "ln_rstd", "cache['ln_rstd']", &[3, t, n])?,
    ];
    let proj = match p {
        0 => None,
        _ => Some(
            cache_entry::<F>(cache, "proj", "cache['proj']", &[t, n, h])?
                .ok_or_else(|| missing("proj"))?,
        ),
    };
    let d_output = FloatArg::<F>::extract(d_output, "d_output")?;
    let (out_meaning, state_meaning) = match p {
        0 => ("(T, N, H)", "(N, H)"),
        _ => ("(T, N, P)", "(N, P)"),
    };
    d_output.expect(&[t, n, hs], out_meaning)?;
    let d_h_n = FloatArg::<F>::extract_opt(d_h_n, "d_h_n")?;
    let d_c_n = FloatArg::<F>::extract_opt(d_c_n, "d_c_n")?;
    if let Some(g) = &d_h_n {
        g.expect(&[n, hs], state_meaning)?;
    }
    if let Some(g) = &d_c_n {
        g.expect(&[n, h], "(N, H)")?;
    }
    let lengths = lengths_arg(lengths)?;
    let spec = Spec {
        mode,
        dims: layer.dims,
        lengths: lengths.as_deref(),
        reverse,
    };

    let (x_d, w_ih_d, w_hh_d) = (layer.x.data(), layer.w_ih.data(), layer.w_hh.data());
    let (b_ih_d, b_hh_d) = (
        layer.b_ih.as_ref().map(|a| a.data()),
        layer.b_hh.as_ref().map(|a| a.data()),
    );
    let w_peep_d = layer.w_peep.as_ref().map(|a| a.data());
    let (w_ln_d, b_ln_d) = (
        layer.w_ln.as_ref().map(|a| a.data()),
        layer.b_ln.as_ref().map(|a| a.data()),
    );
    let w_hr_d = layer.w_hr.as_ref().map(|a| a.data());
    let (gates_d, states_d) = (gates.data(), states.data());
    let (cells_d, hn_d, proj_d) = (
        cells.as_ref().map(|a| a.data()),
        hn.as_ref().map(|a| a.data()),
        proj.as_ref().map(|a| a.data()),
    );
    let (dy_d, dh_d, dc_d) = (
        d_output.data(),
        d_h_n.as_ref().map(|a| a.data()),
        d_c_n.as_ref().map(|a| a.data()),
    );
    let weights = Weights {
        w_ih: &w_ih_d,
        w_hh: &w_hh_d,
        b_ih: b_ih_d.as_deref(),
        b_hh: b_hh_d.as_deref(),
        w_peep: w_peep_d.as_deref(),
        w_hr: w_hr_d.as_deref(),
        w_ln: w_ln_d.as_deref(),
        b_ln: b_ln_d.as_deref(),
    };
    let cells_new_d = cells_new.as_ref().map(|a| a.data());
    let ln_d: Vec<_> = ln.iter().map(|a| a.as_ref().map(|a| a.data())).collect();
    let norm = match (&ln_d[0], &ln_d[1], &ln_d[3]) {
        (Some(x_hat), Some(h_hat), Some(rstd)) => Some(sequence::NormRef {
            x_hat,
            h_hat,
            c_hat: ln_d[2].as_deref().unwrap_or(&[]), // the LSTM's cell state only
            rstd,
        }),
        _ => None,
    };
    let cache_ref = CacheRef {
        gates: &gates_d,
        states: &states_d,
        cells: cells_d.as_deref(),
        hn: hn_d.as_deref(),
        proj: proj_d.as_deref(),
        cells_new: cells_new_d.as_deref(),
        norm,
    };
    let masks_d = masks.data();
    let noise = noise_of(&masks_d);
    let g = run_detached(py, || {
        sequence::backward_with(
            &spec,
            &x_d,
            &weights,
            &cache_ref,
            &dy_d,
            dh_d.as_deref(),
            dc_d.as_deref(),
            &noise,
        )
    })?;

    let opt = |v: Option<Vec<F>>, shape: &[usize]| v.map(|v| to_numpy(py, v, shape)).transpose();
    let (dx, dh0, dc0) = (
        to_numpy(py, g.dx, &[t, n, d])?,
        to_numpy(py, g.dh0, &[n, hs])?,
        opt(g.dc0, &[n, h])?,
    );
    let (ih, hh) = (spec.ih_rows(), spec.hh_rows());
    let (dw_ih, dw_hh) = (
        to_numpy(py, g.dw_ih, &[ih, d])?,
        to_numpy(py, g.dw_hh, &[hh, hs])?,
    );
    let (db_ih, db_hh) = (opt(g.db_ih, &[ih])?, opt(g.db_hh, &[hh])?);
    // The extra parameters' gradients follow, for the modes that have them: the
    // peepholes', the projection's (only lstm projects), or the normalisations'.
    match (g.dw_peep, g.dw_hr, g.dw_ln, g.db_ln) {
        (Some(dp), _, _, _) => {
            let dw_peep = to_numpy(py, dp, &[3 * h])?;
            (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep).into_pyobject(py)
        }
        (None, Some(dr), _, _) => {
            let dw_hr = to_numpy(py, dr, &[p, h])?;
            (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr).into_pyobject(py)
        }
        (None, None, Some(dg), Some(db)) => {
            let len = [mode.layer_norm_blocks() * h];
            let (dw_ln, db_ln) = (to_numpy(py, dg, &len)?, to_numpy(py, db, &len)?);
            (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_ln, db_ln).into_pyobject(py)
        }
        _ => (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh).into_pyobject(py),
    }
}

/// Number of gates of a cell mode.
#[pyfunction]
pub fn gate_count(mode: &str) -> PyResult<usize> {
    Ok(Mode::from_name(mode)?.gates())
}

/// One direction of one recurrent layer over a sequence (see the stub).
#[pyfunction]
#[pyo3(signature = (mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=false, *, w_peep=None, w_hr=None, w_ln=None, b_ln=None, recurrent_mask=None, zoneout_h=None, zoneout_c=None, keep=true))]
#[allow(clippy::too_many_arguments)]
pub fn forward<'py>(
    py: Python<'py>,
    mode: &str,
    x: &Bound<'py, PyAny>,
    h0: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    w_ih: &Bound<'py, PyAny>,
    w_hh: &Bound<'py, PyAny>,
    b_ih: Option<&Bound<'py, PyAny>>,
    b_hh: Option<&Bound<'py, PyAny>>,
    lengths: Option<&Bound<'py, PyAny>>,
    reverse: bool,
    w_peep: Option<&Bound<'py, PyAny>>,
    w_hr: Option<&Bound<'py, PyAny>>,
    w_ln: Option<&Bound<'py, PyAny>>,
    b_ln: Option<&Bound<'py, PyAny>>,
    recurrent_mask: Option<&Bound<'py, PyAny>>,
    zoneout_h: Option<&Bound<'py, PyAny>>,
    zoneout_c: Option<&Bound<'py, PyAny>>,
    keep: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let mode = Mode::from_name(mode)?;
    let masks = [recurrent_mask, zoneout_h, zoneout_c];
    let extra = [w_peep, w_hr, w_ln, b_ln];
    with_float!(precision(py, w_ih, "w_ih")?, F => forward_typed::<F>(
        py, mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, extra, masks, keep,
    ))
}

/// Backpropagation through time for one `forward` call (see the stub).
#[pyfunction]
#[pyo3(signature = (mode, x, w_ih, w_hh, b_ih, b_hh, lengths, reverse, cache, d_output, d_h_n=None, d_c_n=None, *, w_peep=None, w_hr=None, w_ln=None, b_ln=None, recurrent_mask=None, zoneout_h=None, zoneout_c=None))]
#[allow(clippy::too_many_arguments)]
pub fn backward<'py>(
    py: Python<'py>,
    mode: &str,
    x: &Bound<'py, PyAny>,
    w_ih: &Bound<'py, PyAny>,
    w_hh: &Bound<'py, PyAny>,
    b_ih: Option<&Bound<'py, PyAny>>,
    b_hh: Option<&Bound<'py, PyAny>>,
    lengths: Option<&Bound<'py, PyAny>>,
    reverse: bool,
    cache: &Bound<'py, PyAny>,
    d_output: &Bound<'py, PyAny>,
    d_h_n: Option<&Bound<'py, PyAny>>,
    d_c_n: Option<&Bound<'py, PyAny>>,
    w_peep: Option<&Bound<'py, PyAny>>,
    w_hr: Option<&Bound<'py, PyAny>>,
    w_ln: Option<&Bound<'py, PyAny>>,
    b_ln: Option<&Bound<'py, PyAny>>,
    recurrent_mask: Option<&Bound<'py, PyAny>>,
    zoneout_h: Option<&Bound<'py, PyAny>>,
    zoneout_c: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mode = Mode::from_name(mode)?;
    let masks = [recurrent_mask, zoneout_h, zoneout_c];
    let extra = [w_peep, w_hr, w_ln, b_ln];
    with_float!(precision(py, w_ih, "w_ih")?, F => backward_typed::<F>(
        py, mode, x, w_ih, w_hh, b_ih, b_hh, lengths, reverse, cache, d_output, d_h_n, d_c_n,
        extra, masks,
    ))
}
