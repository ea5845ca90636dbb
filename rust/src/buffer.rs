//! Buffer allocation that reports running out of memory as an error.

use crate::error::{Result, RnnError};
use crate::real::Real;

/// A zeroed buffer, or an error (not an abort) when memory runs out.
pub fn zeros<F: Real>(len: usize, what: &str) -> Result<Vec<F>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        RnnError::argument(
            what,
            format!("cannot allocate {len} elements of {}", F::NAME),
        )
    })?;
    v.resize(len, F::ZERO);
    Ok(v)
}
