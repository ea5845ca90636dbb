//! The per-step recurrent products of a time loop, `h (S, H) @ W_hh^T` forward
//! and `dg (S, G*H) @ W_hh` backward: over packed panels for a few rows
//! ([`Narrow`]), through the GEMM for more.

use crate::error::Result;
use crate::linalg::{mul_packed_t, MatRef, Packed, PACK_MIN_STEPS};
use crate::panel::narrow::Narrow;
use crate::real::Real;
use crate::simd::Level;

/// Rows of a shard up to which the recurrent product runs over panels
/// ([`Narrow`]) rather than through the GEMM, whose per-call set-up (packing
/// `h_prev` each step) dominates a product with a few rows. Same-process A/Bs:
/// at 17-32 rows the panels were 7-43% faster on a Xeon (AVX-512, 2 MiB L2)
/// and level on an EPYC; at 64 rows level on both.
pub const NARROW_ROWS: usize = 32;

/// Whether products of `rows` rows over `steps` steps go over panels: packing
/// reads and writes all of `W_hh`, which only pays over several steps (like the
/// GEMM's own packing, [`PACK_MIN_STEPS`]); fewer steps use `W_hh` in place.
fn narrow(rows: usize, steps: usize) -> bool {
    rows <= NARROW_ROWS && steps >= PACK_MIN_STEPS
}

/// `W_hh` prepared for the per-step products `h_prev (S, H) @ W_hh^T`.
pub enum Recurrent<'a, F> {
    Gemm(Packed<'a, F>),
    Narrow(Narrow<F>),
}

impl<'a, F: Real> Recurrent<'a, F> {
    /// `W_hh^T` of `w_hh (G*H, H)`, for `steps` products of at most `rows` rows:
    /// `dst (S, H) = dg (S, G*H) @ W_hh`.
    pub fn transposed(
        w_hh: &'a [F],
        gh: usize,
        h: usize,
        steps: usize,
        rows: usize,
    ) -> Result<Self> {
        Ok(if narrow(rows, steps) {
            Recurrent::Narrow(Narrow::from_transposed(w_hh, gh, h)?)
        } else {
            Recurrent::Gemm(Packed::for_steps(
                MatRef::row_major(w_hh, gh, h).t(),
                steps,
            )?)
        })
    }

    /// `w_hh (G*H, H)` for `steps` products of at most `rows` rows each.
    pub fn new(w_hh: &'a [F], gh: usize, h: usize, steps: usize, rows: usize) -> Result<Self> {
        Ok(if narrow(rows, steps) {
            Recurrent::Narrow(Narrow::new(w_hh, gh, h)?)
        } else {
            Recurrent::Gemm(Packed::for_steps(MatRef::row_major(w_hh, gh, h), steps)?)
        })
    }

    /// `dst (S, M) (+)= x (S, K) @ W^T` (`W` is `W_hh`, or `W_hh^T` when built
    /// by [`transposed`](Self::transposed)), parallel inside when `wide`.
    #[allow(clippy::too_many_arguments)]
    pub fn mul(&self, level: Level, dst: &mut [F], h_prev: &[F], s: usize, acc: bool, wide: bool) {
        match self {
            Recurrent::Gemm(p) => mul_packed_t(dst, h_prev, p, s, acc, wide),
            Recurrent::Narrow(p) => p.mul(level, dst, h_prev, s, acc, wide),
        }
    }
}
