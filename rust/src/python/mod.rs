//! The Python extension module `rnncore._rnncore`: a thin layer that converts
//! and validates arguments, then runs the kernels with the GIL released.

mod arrays;
mod errors;
mod kernels;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_rnncore")]
fn rnncore_extension(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(kernels::gate_count, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::forward, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::backward, m)?)?;
    Ok(())
}
