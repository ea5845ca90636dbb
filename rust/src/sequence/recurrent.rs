//! The per-step recurrent products of a time loop, `h (S, H) @ W_hh^T` forward
//! and `dg (S, G*H) @ W_hh` backward: over packed panels for a few rows
//! ([`Narrow`]), through the GEMM for more.

use crate::error::Result;
use crate::linalg::{mul_packed_t, MatRef, Packed, PACK_MIN_STEPS};
use crate::mode::Mode;
use crate::panel::cache::{self, Form};
use crate::panel::narrow::Narrow;
use crate::real::Real;
use crate::simd::{self, Level};
use std::sync::Arc;

/// Rows of a shard up to which the recurrent product runs over panels
/// ([`Narrow`]) at the scalar level, rather than through the GEMM, whose
/// per-call set-up (packing `h_prev` each step) dominates a product with a few
/// rows. With AVX2 or AVX-512 the panels' register tiles beat the GEMM at
/// every batch width (110 against 75 GFLOP/s per core at 32-128 rows, H = 512,
/// on an EPYC), so they take every product.
pub const NARROW_ROWS: usize = 32;

/// Whether products of `rows` rows over `steps` steps go over panels: packing
/// reads and writes all of `W_hh`, which only pays over several steps (like the
/// GEMM's own packing, [`PACK_MIN_STEPS`]); fewer steps use `W_hh` in place.
fn narrow(rows: usize, steps: usize) -> bool {
    steps >= PACK_MIN_STEPS && (rows <= NARROW_ROWS || simd::best_level() != Level::Scalar)
}

/// `W_hh` prepared for the per-step products `h_prev (S, H) @ W_hh^T`. The
/// forward's panels come from the cache of packed weights ([`cache`]) while
/// `W_hh` is unchanged; the backward's (`W_hh` itself) are packed per call:
/// a backward follows a forward whose weights then change (a training step),
/// so keeping them would only cost a copy.
pub enum Recurrent<'a, F> {
    Gemm(Packed<'a, F>),
    Narrow(Arc<Narrow<F>>),
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
            Recurrent::Narrow(Arc::new(Narrow::from_transposed(w_hh, gh, h)?))
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
            Recurrent::Narrow(cache::packed(w_hh, Form::Rows, gh, h, h, || {
                Narrow::new(w_hh, gh, h)
            })?)
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

/// `W_hh` prepared for the per-step products: all of it (`main`), or, when the
/// reset multiplies `h` before the product, its last `(H, H)` block (`n`, on
/// `r * h`) apart from the rest: the GRU's `W_hr|W_hz` and the MUTs' `W_hr`
/// (`main`, on `h`), and MUT2's and MUT3's `W_hz` (`z`, on `h` or `tanh(h)`).
pub struct RecurrentWeights<'a, F> {
    pub main: Recurrent<'a, F>,
    pub n: Option<Recurrent<'a, F>>,
    pub z: Option<Recurrent<'a, F>>,
}

/// The blocks of `w_hh (HH, H)` as [`RecurrentWeights`] splits them:
/// `(z, main, n)`, each a slice of whole `H`-row blocks.
pub fn split_w_hh<F>(mode: Mode, w_hh: &[F], h: usize) -> (Option<&[F]>, &[F], Option<&[F]>) {
    if !mode.reset_before_product() {
        return (None, w_hh, None);
    }
    let (front, w_n) = w_hh.split_at((mode.hh_blocks() - 1) * h * h);
    if mode.is_mut() && mode.hh_blocks() == 3 {
        let (w_z, w_r) = front.split_at(h * h); // (H, H) each
        (Some(w_z), w_r, Some(w_n))
    } else {
        (None, front, Some(w_n))
    }
}

impl<'a, F: Real> RecurrentWeights<'a, F> {
    /// `w_hh (HH, H)` for `steps` products of at most `rows` rows each; with
    /// `transposed`, for the backward's products with `W_hh` itself.
    pub fn new(
        mode: Mode,
        w_hh: &'a [F],
        h: usize,
        steps: usize,
        rows: usize,
        transposed: bool,
    ) -> Result<Self> {
        let build = |w: &'a [F]| {
            let out = w.len() / h; // rows of this block
            if transposed {
                Recurrent::transposed(w, out, h, steps, rows)
            } else {
                Recurrent::new(w, out, h, steps, rows)
            }
        };
        let (z, main, n) = split_w_hh(mode, w_hh, h);
        Ok(Self {
            main: build(main)?,
            n: n.map(build).transpose()?,
            z: z.map(build).transpose()?,
        })
    }
}
