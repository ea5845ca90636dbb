//! Buffer allocation that reports running out of memory as an error.

use crate::error::{Result, RnnError};
use crate::real::Real;

/// A zeroed buffer, or an error (not an abort) when memory runs out.
///
/// The size is first tried with `try_reserve_exact`; the buffer itself comes
/// from `vec!`, which asks the allocator for zeroed memory (`calloc`), so large
/// buffers cost no explicit fill: fresh pages are zero already.
pub fn zeros<F: Real>(len: usize, what: &str) -> Result<Vec<F>> {
    Vec::<F>::new().try_reserve_exact(len).map_err(|_| {
        RnnError::argument(
            what,
            format!("cannot allocate {len} elements of {}", F::NAME),
        )
    })?;
    Ok(vec![F::ZERO; len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_or_error() {
        assert!(zeros::<f32>(1000, "x").unwrap().iter().all(|&v| v == 0.0));
        assert!(zeros::<f64>(0, "x").unwrap().is_empty());
        assert!(matches!(
            zeros::<f64>(usize::MAX / 4, "gates"),
            Err(RnnError::Argument { arg, .. }) if arg == "gates"
        ));
    }
}
