//! `matmul`: the product of two float matrices on the kernels' GEMM and thread
//! pool (tiles of rows, so the same bits at any thread count), for the dense
//! layers' products. The GIL is released while it runs.

use numpy::Element;
use pyo3::prelude::*;

use super::arrays::{precision, to_numpy, with_float, FloatArg};
use super::errors::run_detached;
use crate::buffer::{checked_len, zeros};
use crate::error::RnnError;
use crate::linalg::{matmul_tiled, MatRef};
use crate::real::Real;

fn typed<'py, F: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    transpose_a: bool,
    transpose_b: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let a = FloatArg::<F>::extract(a, "a")?;
    let b = FloatArg::<F>::extract(b, "b")?;
    let (ad, bd) = (a.dims(2, "(M, K)")?.to_vec(), b.dims(2, "(K, N)")?.to_vec());
    let (m, k) = if transpose_a {
        (ad[1], ad[0])
    } else {
        (ad[0], ad[1])
    };
    let (kb, n) = if transpose_b {
        (bd[1], bd[0])
    } else {
        (bd[0], bd[1])
    };
    if kb != k {
        return Err(RnnError::shape(
            "b",
            format!("needs {k} rows (the columns of a) for the product, got {kb}"),
        )
        .into());
    }
    let len = checked_len("product", &[m, n], std::mem::size_of::<F>())?;
    let (a_d, b_d) = (a.data(), b.data());
    let out = run_detached(py, || {
        let mut dst = zeros::<F>(len, "product")?;
        let am = if transpose_a {
            MatRef::row_major(&a_d, k, m).t()
        } else {
            MatRef::row_major(&a_d, m, k)
        };
        let bm = if transpose_b {
            MatRef::row_major(&b_d, n, k).t()
        } else {
            MatRef::row_major(&b_d, k, n)
        };
        matmul_tiled(&mut dst, am, bm, false);
        Ok(dst)
    })?;
    Ok(to_numpy(py, out, &[m, n])?.into_any())
}

/// `op(a) @ op(b)` for 2-D float arrays of one dtype (see the stub).
#[pyfunction]
#[pyo3(signature = (a, b, transpose_a=false, transpose_b=false))]
pub fn matmul<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    transpose_a: bool,
    transpose_b: bool,
) -> PyResult<Bound<'py, PyAny>> {
    with_float!(precision(py, a, "a")?, F => typed::<F>(py, a, b, transpose_a, transpose_b))
}
