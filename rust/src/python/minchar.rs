//! `min_char_rnn_step`: the fused min-char-rnn training step, updating the
//! caller's arrays in place with the GIL released.
//!
//! Signature and shapes are documented in `python/rnncore/_rnncore.pyi`.

use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::arrays::{int_arg, ndarray, precision, to_numpy, with_float, writable, FloatArg};
use super::errors::run_detached;
use crate::error::RnnError;
use crate::minchar::{self, Adagrad, Arrays, Sums};
use crate::real::Real;

/// The arrays' names, in the order Python passes them.
const NAMES: [&str; 6] = [
    "weight_ih_l0",
    "weight_hh_l0",
    "bias_ih_l0",
    "bias_hh_l0",
    "head.weight",
    "head.bias",
];

/// Error unless `v` is finite and `>= 0` (or, for `clip`, a number `> 0`).
fn check_knob(name: &str, v: f64) -> Result<(), RnnError> {
    let ok = if name == "clip" {
        v > 0.0
    } else {
        v.is_finite() && v >= 0.0
    };
    if ok {
        return Ok(());
    }
    let want = if name == "clip" {
        "a number > 0"
    } else {
        "a finite number >= 0"
    };
    Err(RnnError::argument(name, format!("must be {want}, got {v}")))
}

#[allow(clippy::too_many_arguments)]
fn typed_step<'py, F: Real + Element>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    h0: &Bound<'py, PyAny>,
    params: &[Bound<'py, PyAny>],
    grads: &[Bound<'py, PyAny>],
    sums: &[Bound<'py, PyAny>],
    opt: Adagrad,
) -> PyResult<(f64, Bound<'py, PyAny>, bool)> {
    let h0 = FloatArg::<F>::extract(h0, "h0")?;
    let h = h0.dims(1, "(H,)")?[0];
    let b_out = ndarray(&params[5], "head.bias")?;
    if b_out.ndim() != 1 || b_out.shape()[0] == 0 || h == 0 {
        return Err(RnnError::shape(
            "head.bias",
            "must be (V,) with V >= 1, and h0 (H,) with H >= 1",
        )
        .into());
    }
    let v = b_out.shape()[0];
    let shapes: [&[usize]; 6] = [&[h, v], &[h, h], &[h], &[h], &[v, h], &[v]];
    let (ids, _) = int_arg(inputs, "inputs", 1, v)?;
    let (tg, _) = int_arg(targets, "targets", 1, v)?;
    if ids.is_empty() || tg.len() != ids.len() {
        return Err(RnnError::shape(
            "targets",
            format!(
                "must have the shape of inputs ({},), at least one id; got ({},)",
                ids.len(),
                tg.len()
            ),
        )
        .into());
    }
    let h0 = h0.data().into_owned();
    crate::sequence::check_finite("h0", &h0)?;
    let mut arrays = Vec::with_capacity(17);
    for (i, p) in params.iter().enumerate() {
        arrays.push(writable::<F>(p, NAMES[i], shapes[i])?);
    }
    for (i, g) in grads.iter().enumerate() {
        arrays.push(writable::<F>(
            g,
            &format!("grads[{}]", NAMES[i]),
            shapes[i],
        )?);
    }
    for (i, s) in sums.iter().enumerate() {
        let k = if i < 3 { i } else { i + 1 }; // no accumulator for bias_hh
        arrays.push(writable::<F>(s, &format!("sums[{}]", NAMES[k]), shapes[k])?);
    }
    let mut slices: Vec<&mut [F]> = Vec::with_capacity(17);
    for a in arrays.iter_mut() {
        slices.push(
            a.as_slice_mut()
                .map_err(|_| RnnError::Internal("a checked array is not contiguous".into()))?,
        );
    }
    for (name, p) in NAMES.iter().zip(&slices[..6]) {
        crate::sequence::check_finite(name, p)?;
    }
    let mut it = slices.into_iter();
    let mut next = || it.next().expect("17 arrays");
    let params = Arrays {
        w_ih: next(),
        w_hh: next(),
        b_ih: next(),
        b_hh: next(),
        w_out: next(),
        b_out: next(),
    };
    let grads = Arrays {
        w_ih: next(),
        w_hh: next(),
        b_ih: next(),
        b_hh: next(),
        w_out: next(),
        b_out: next(),
    };
    let sums = Sums {
        w_ih: next(),
        w_hh: next(),
        b_ih: next(),
        w_out: next(),
        b_out: next(),
    };
    let out = run_detached(py, || {
        minchar::step(
            crate::simd::best_level(),
            &ids,
            &tg,
            &h0,
            params,
            grads,
            sums,
            opt,
        )
    })?;
    let h_next = to_numpy(py, out.h, &[1, 1, h])?.into_any();
    Ok((out.loss, h_next, out.updated))
}

/// One min-char-rnn training step; see the stub for the arguments.
#[pyfunction]
#[pyo3(signature = (inputs, targets, h0, params, grads, sums, lr, eps, clip))]
#[allow(clippy::too_many_arguments)]
pub fn min_char_rnn_step<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    h0: &Bound<'py, PyAny>,
    params: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    sums: Vec<Bound<'py, PyAny>>,
    lr: f64,
    eps: f64,
    clip: f64,
) -> PyResult<(f64, Bound<'py, PyAny>, bool)> {
    for (name, list, want) in [
        ("params", &params, 6),
        ("grads", &grads, 6),
        ("sums", &sums, 5),
    ] {
        if list.len() != want {
            return Err(RnnError::argument(
                name,
                format!("must hold {want} arrays, got {}", list.len()),
            )
            .into());
        }
    }
    check_knob("lr", lr)?;
    check_knob("eps", eps)?;
    check_knob("clip", clip)?;
    let opt = Adagrad { lr, eps, clip };
    with_float!(precision(py, &params[0], NAMES[0])?, F => {
        typed_step::<F>(py, inputs, targets, h0, &params, &grads, &sums, opt)
    })
}
