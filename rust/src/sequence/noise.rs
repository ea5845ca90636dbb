//! Dropout inside the recurrence: the masks a call may carry ([`Noise`]) and
//! the pointwise pieces the time loops apply them with.

use super::spec::{check_finite, check_len, Dims, Spec};
use crate::error::{Result, RnnError};
use crate::real::Real;

/// Dropout inside the recurrence, drawn by the caller; every part is optional.
///
/// - `recurrent (N, H)`: a variational dropout mask (Gal & Ghahramani 2016), one
///   per sequence, on the state that the products with the recurrent weights
///   read: they see `h * mask`; the state carried from step to step (GRU's `z *
///   h`) is not masked. Values `0` or `1 / (1 - p)`.
/// - `zoneout_h (T, N, H)`: zoneout of the hidden state (Krueger et al. 2017),
///   `h_t = z * h_{t-1} + (1 - z) * h~_t` where `h~_t` is the cell's new state.
///   Values in `[0, 1]`: `0` or `1` in training, the rate itself at evaluation.
/// - `zoneout_c (T, N, H)`: the same for the cell state (the LSTM modes); the
///   new hidden state is computed from the cell's own update `c~_t`.
#[derive(Clone, Copy, Debug)]
pub struct Noise<'a, F> {
    pub recurrent: Option<&'a [F]>,
    pub zoneout_h: Option<&'a [F]>,
    pub zoneout_c: Option<&'a [F]>,
}

impl<F> Noise<'_, F> {
    /// No dropout and no zoneout.
    pub fn none() -> Self {
        Self {
            recurrent: None,
            zoneout_h: None,
            zoneout_c: None,
        }
    }
}

impl<F: Real> Noise<'_, F> {
    /// Check each mask's length against `spec` and that it is finite, and that
    /// the mode takes it.
    pub(crate) fn check(&self, spec: &Spec<'_>) -> Result<()> {
        let Dims { t, n, h, p, .. } = spec.dims;
        let mode = spec.mode;
        let any = self.recurrent.is_some() || self.zoneout_h.is_some() || self.zoneout_c.is_some();
        if p > 0 && any {
            return Err(RnnError::argument(
                "w_hr",
                "the LSTM with projections takes no dropout masks (recurrent_mask, zoneout)",
            ));
        }
        if let Some(m) = self.recurrent {
            if mode.is_mut() {
                return Err(RnnError::argument(
                    "recurrent_mask",
                    format!("recurrent dropout is not available for {}", mode.name()),
                ));
            }
            check_len("recurrent_mask", m, n * h)?;
            check_finite("recurrent_mask", m)?;
        }
        if let Some(z) = self.zoneout_h {
            check_len("zoneout_h", z, t * n * h)?;
            check_finite("zoneout_h", z)?;
        }
        if let Some(z) = self.zoneout_c {
            if !mode.has_cell_state() {
                return Err(RnnError::argument(
                    "zoneout_c",
                    format!("{} has no cell state; pass None", mode.name()),
                ));
            }
            check_len("zoneout_c", z, t * n * h)?;
            check_finite("zoneout_c", z)?;
        }
        Ok(())
    }
}

/// `dst = src * mask`, elementwise (the masked state a product reads).
pub(crate) fn masked<F: Real>(src: &[F], mask: &[F], dst: &mut [F]) {
    for ((d, &s), &m) in dst.iter_mut().zip(src).zip(mask) {
        *d = s * m;
    }
}

/// `dst += src * mask`, elementwise (a product's gradient reaching the state).
pub(crate) fn add_masked<F: Real>(dst: &mut [F], src: &[F], mask: &[F]) {
    for ((d, &s), &m) in dst.iter_mut().zip(src).zip(mask) {
        *d += s * m;
    }
}

/// Zoneout of one state: `next = z * prev + (1 - z) * next`, elementwise.
pub(crate) fn zone<F: Real>(next: &mut [F], prev: &[F], z: &[F]) {
    for ((n, &p), &z) in next.iter_mut().zip(prev).zip(z) {
        *n = z * p + (F::ONE - z) * *n;
    }
}

/// Backward of [`zone`]: `keep = z * d` (the gradient that reaches `prev`
/// directly) and `d = (1 - z) * d` (the gradient of the cell's new state).
pub(crate) fn split<F: Real>(d: &mut [F], z: &[F], keep: &mut [F]) {
    for ((d, &z), k) in d.iter_mut().zip(z).zip(keep) {
        *k = z * *d;
        *d *= F::ONE - z;
    }
}

/// `dst += src`, elementwise.
pub(crate) fn add<F: Real>(dst: &mut [F], src: &[F]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}
