//! What a sequence call is about (mode, sizes, lengths, direction), its
//! validation, and the buffers that pass from the forward to the backward.

use crate::error::{Result, RnnError};
use crate::mode::Mode;
use crate::real::Real;

/// Sizes of one call: `T` steps, batch `N`, input `D`, hidden `H`, and the
/// projection size `P` of an LSTM with projections (PyTorch's `proj_size`), 0
/// for none. With a projection the hidden state `h` has `P` units and the cell
/// state `c` has `H` ([`Spec::state_size`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub t: usize,
    pub n: usize,
    pub d: usize,
    pub h: usize,
    pub p: usize,
}

/// The parameters of one direction of one layer (borrowed, row-major).
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a, F> {
    /// `(G*H, D)` (`(IH, D)` for the MUTs, see [`Mode::ih_blocks`]).
    pub w_ih: &'a [F],
    /// `(G*H, H)` (`(HH, H)` for the MUTs, see [`Mode::hh_blocks`]; `(4H, P)`
    /// with a projection).
    pub w_hh: &'a [F],
    /// `(G*H,)` (`(IH,)`), or `None` for a layer without bias (then `b_hh` is `None` too).
    pub b_ih: Option<&'a [F]>,
    /// `(G*H,)` (`(HH,)`) or `None`.
    pub b_hh: Option<&'a [F]>,
    /// `(3H,)` peephole weights `p_i, p_f, p_o` for
    /// [`LstmPeephole`](Mode::LstmPeephole), `None` for every other mode.
    pub w_peep: Option<&'a [F]>,
    /// Gains of the layer normalisations ([`Mode::layer_norm_blocks`]): the
    /// input term's `G*H`, the recurrent term's `G*H`, the LSTM's cell state
    /// `H`; `None` for the modes without.
    pub w_ln: Option<&'a [F]>,
    /// Their shifts, in the same order.
    pub b_ln: Option<&'a [F]>,
    /// `(P, H)` projection `W_hr` of an LSTM with projections (`dims.p > 0`):
    /// `h = W_hr (o * tanh(c))`; `None` without one.
    pub w_hr: Option<&'a [F]>,
}

/// Everything about a call except the arrays.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    pub mode: Mode,
    pub dims: Dims,
    /// `(N,)` steps of each sequence, each in `1..=T`; `None` means all `T`.
    pub lengths: Option<&'a [usize]>,
    /// Run from each sequence's last step down to step 0.
    pub reverse: bool,
}

/// What the forward saves for the backward (owned).
#[derive(Debug)]
pub struct Cache<F> {
    /// `(T, N, G*H)` activated gates.
    pub gates: Vec<F>,
    /// `(T+1, N, H)` hidden states (`(T+1, N, P)` with a projection); see
    /// [`Spec::prev_slot`] for the indexing.
    pub states: Vec<F>,
    /// `(T+1, N, H)` cell states (LSTM only).
    pub cells: Option<Vec<F>>,
    /// `(T, N, H)` `W_hn h + b_hn` (GRU), `r * h` (GRU with the reset before
    /// the product, the MUTs); `None` for the other cells.
    pub hn: Option<Vec<F>>,
    /// `(T, N, H)` the cell's own update `c~_t` before the cell state's zoneout;
    /// `None` without [`Noise::zoneout_c`].
    pub cells_new: Option<Vec<F>>,
    /// What the layer normalisations keep, [`LstmLayerNorm`](Mode::LstmLayerNorm) only.
    pub norm: Option<NormCache<F>>,
    /// `(T, N, H)` `o * tanh(c)` before the projection (LSTM with projections
    /// only; rows of steps past a sequence's end hold no meaning).
    pub proj: Option<Vec<F>>,
}

/// What a layer-normalised cell keeps for the backward (owned).
#[derive(Debug)]
pub struct NormCache<F> {
    /// `(T, N, G*H)` the normalised input projection.
    pub x_hat: Vec<F>,
    /// `(T, N, G*H)` the normalised recurrent projection.
    pub h_hat: Vec<F>,
    /// `(T, N, H)` the normalised cell state (empty for the GRU).
    pub c_hat: Vec<F>,
    /// `(3, T, N)` the reciprocal standard deviations of the three, in that order.
    pub rstd: Vec<F>,
}

/// Borrowed view of a [`NormCache`].
#[derive(Debug)]
pub struct NormRef<'a, F> {
    pub x_hat: &'a [F],
    pub h_hat: &'a [F],
    pub c_hat: &'a [F],
    pub rstd: &'a [F],
}

// By hand: the derives would require `F: Copy`, and these are only references.
impl<F> Clone for NormRef<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for NormRef<'_, F> {}

/// Borrowed view of a [`Cache`], as the backward takes it.
#[derive(Clone, Copy, Debug)]
pub struct CacheRef<'a, F> {
    pub gates: &'a [F],
    pub states: &'a [F],
    pub cells: Option<&'a [F]>,
    pub hn: Option<&'a [F]>,
    pub cells_new: Option<&'a [F]>,
    pub norm: Option<NormRef<'a, F>>,
    pub proj: Option<&'a [F]>,
}

impl<F> Cache<F> {
    pub fn view(&self) -> CacheRef<'_, F> {
        CacheRef {
            gates: &self.gates,
            states: &self.states,
            cells: self.cells.as_deref(),
            hn: self.hn.as_deref(),
            cells_new: self.cells_new.as_deref(),
            norm: self.norm.as_ref().map(|c| NormRef {
                x_hat: &c.x_hat,
                h_hat: &c.h_hat,
                c_hat: &c.c_hat,
                rstd: &c.rstd,
            }),
            proj: self.proj.as_deref(),
        }
    }
}

/// `a * b * ...` or a shape error if the element count overflows.
pub(crate) fn product(arg: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| RnnError::shape(arg, format!("shape {factors:?} is too large")))
}

/// Error unless `slice` holds exactly `want` elements.
pub(crate) fn check_len<F>(arg: &str, slice: &[F], want: usize) -> Result<()> {
    if slice.len() == want {
        Ok(())
    } else {
        Err(RnnError::shape(
            arg,
            format!("expected {want} elements, got {}", slice.len()),
        ))
    }
}

crate::simd::multiversion! {
    /// Writes whether every element of `slice` is finite into `out`. Branch-free
    /// so it vectorises: `x - x` is exactly 0 for finite `x` and NaN for NaN or
    /// infinity, and sums of zeros stay 0 while a NaN propagates.
    #[allow(clippy::eq_op)] // `x - x` is the test itself
    fn all_finite_into<F: Real>(slice: &[F], out: &mut bool) {
        const LANES: usize = 16;
        let mut acc = [F::ZERO; LANES];
        let chunks = slice.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for i in 0..LANES {
                acc[i] += c[i] - c[i];
            }
        }
        for (a, &v) in acc.iter_mut().zip(tail) {
            *a += v - v;
        }
        *out = acc.iter().all(|&a| a == F::ZERO);
    }
}

/// Error naming `arg` if any element is NaN or infinite.
pub(crate) fn check_finite<F: Real>(arg: &str, slice: &[F]) -> Result<()> {
    let level = crate::simd::best_level();
    let finite = crate::parallel::all_pieces(slice.len(), |lo, hi| {
        let mut finite = false;
        all_finite_into(level, &slice[lo..hi], &mut finite);
        finite
    });
    if finite {
        Ok(())
    } else {
        Err(RnnError::non_finite(arg))
    }
}

impl Spec<'_> {
    /// Check sizes (all at least 1, element counts that fit) and lengths.
    pub fn validate(&self) -> Result<()> {
        let Dims { t, n, d, h, p } = self.dims;
        for (v, arg, what) in [
            (t, "x", "time (T)"),
            (n, "x", "batch (N)"),
            (d, "x", "input (D)"),
            (h, "h0", "hidden (H)"),
        ] {
            if v == 0 {
                return Err(RnnError::shape(
                    arg,
                    format!("the {what} dimension is empty; every size must be at least 1"),
                ));
            }
        }
        let gh = product("w_ih", &[self.mode.gates(), h])?;
        product("x", &[t, n, d])?;
        product("gates", &[t + 1, n, gh])?;
        product("w_ih", &[gh, d])?;
        product("w_hh", &[gh, h])?;
        if p > 0 {
            if self.mode != Mode::Lstm {
                return Err(RnnError::argument(
                    "w_hr",
                    format!(
                        "{} has no projection; only lstm takes w_hr (P, H)",
                        self.mode.name()
                    ),
                ));
            }
            if p >= h {
                return Err(RnnError::argument(
                    "w_hr",
                    format!(
                        "the projection size P ({p}) must be smaller than the hidden \
                         size H ({h})"
                    ),
                ));
            }
        }
        if self.mode.needs_square_input() && d != h {
            return Err(RnnError::argument(
                "x",
                format!(
                    "{} adds x itself to a gate, so its input size D ({d}) must equal \
                     the hidden size H ({h})",
                    self.mode.name()
                ),
            ));
        }
        if let Some(lengths) = self.lengths {
            if lengths.len() != n {
                return Err(RnnError::shape(
                    "lengths",
                    format!(
                        "expected {n} lengths (one per sequence), got {}",
                        lengths.len()
                    ),
                ));
            }
            if let Some((b, &l)) = lengths.iter().enumerate().find(|(_, &l)| l < 1 || l > t) {
                return Err(RnnError::argument(
                    "lengths",
                    format!("lengths[{b}] = {l} is outside 1..={t} (T)"),
                ));
            }
        }
        Ok(())
    }

    /// Width of the hidden state `h` (and of the output): `P` with a
    /// projection, else `H`. The cell state `c` always has `H` units.
    pub fn state_size(&self) -> usize {
        if self.dims.p > 0 {
            self.dims.p
        } else {
            self.dims.h
        }
    }

    /// Number of gate columns `G * H`.
    pub fn gh(&self) -> usize {
        self.mode.gates() * self.dims.h
    }

    /// Rows of `w_ih` and `b_ih`: `G * H`, fewer for MUT1 and MUT2.
    pub fn ih_rows(&self) -> usize {
        self.mode.ih_blocks() * self.dims.h
    }

    /// Rows of `w_hh` and `b_hh`: `G * H`, fewer for MUT1.
    pub fn hh_rows(&self) -> usize {
        self.mode.hh_blocks() * self.dims.h
    }

    /// The time index of the `k`-th step taken (`k = 0` first).
    pub fn time_of_step(&self, k: usize) -> usize {
        if self.reverse {
            self.dims.t - 1 - k
        } else {
            k
        }
    }

    /// Slot of the `(T+1, N, H)` state buffer holding the state that step `t`
    /// reads: forward `t` (slot 0 is `h0`), reverse `t + 1` (slot `T` is `h0`).
    pub fn prev_slot(&self, t: usize) -> usize {
        if self.reverse {
            t + 1
        } else {
            t
        }
    }

    /// Slot that step `t` writes: forward `t + 1`, reverse `t`.
    pub fn next_slot(&self, t: usize) -> usize {
        if self.reverse {
            t
        } else {
            t + 1
        }
    }

    /// Slot of the initial state (`h0`): 0 forward, `T` reverse.
    pub fn initial_slot(&self) -> usize {
        if self.reverse {
            self.dims.t
        } else {
            0
        }
    }

    /// Slot of the final state (`h_n`): `T` forward, 0 reverse.
    pub fn final_slot(&self) -> usize {
        if self.reverse {
            0
        } else {
            self.dims.t
        }
    }

    /// Fill `active (N,)` with whether each sequence runs at time `t`.
    pub fn fill_active(&self, t: usize, active: &mut [bool]) {
        match self.lengths {
            None => active.fill(true),
            Some(lengths) => {
                for (a, &l) in active.iter_mut().zip(lengths) {
                    *a = t < l;
                }
            }
        }
    }

    /// Check every weight and bias slice against the dims.
    pub(crate) fn check_weights<F>(&self, w: &Weights<'_, F>) -> Result<()> {
        let Dims { d, h, p, .. } = self.dims;
        let (ih, hh) = (self.ih_rows(), self.hh_rows());
        check_len("w_ih", w.w_ih, ih * d)?;
        check_len("w_hh", w.w_hh, hh * self.state_size())?;
        match (p > 0, w.w_hr) {
            (true, Some(w_hr)) => check_len("w_hr", w_hr, p * h)?,
            (true, None) => {
                return Err(RnnError::argument(
                    "w_hr",
                    format!("a projection size P = {p} needs the projection w_hr (P, H)"),
                ))
            }
            (false, Some(_)) => {
                return Err(RnnError::argument(
                    "w_hr",
                    "the projection size P is 0 (w_hr has no rows); pass None for no projection",
                ))
            }
            (false, None) => {}
        }
        match (self.mode.has_peepholes(), w.w_peep) {
            (true, Some(p)) => check_len("w_peep", p, 3 * h)?,
            (true, None) => {
                return Err(RnnError::argument(
                    "w_peep",
                    format!("{} needs its peephole weights (3*H,)", self.mode.name()),
                ))
            }
            (false, Some(_)) => {
                return Err(RnnError::argument(
                    "w_peep",
                    format!("{} has no peephole weights; pass None", self.mode.name()),
                ))
            }
            (false, None) => {}
        }
        match (self.mode.has_layer_norm(), w.w_ln, w.b_ln) {
            (true, Some(g), Some(b)) => {
                let len = self.mode.layer_norm_blocks() * h;
                check_len("w_ln", g, len)?;
                check_len("b_ln", b, len)?;
            }
            (true, _, _) => {
                return Err(RnnError::argument(
                    "w_ln",
                    format!(
                        "{} needs its normalisations' gains w_ln and shifts b_ln ({}*H,)",
                        self.mode.name(),
                        self.mode.layer_norm_blocks()
                    ),
                ))
            }
            (false, None, None) => {}
            (false, _, _) => {
                return Err(RnnError::argument(
                    "w_ln",
                    format!("{} has no layer normalisation; pass None", self.mode.name()),
                ))
            }
        }
        match (w.b_ih, w.b_hh) {
            (Some(b_ih), Some(b_hh)) => {
                check_len("b_ih", b_ih, ih)?;
                check_len("b_hh", b_hh, hh)
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(RnnError::argument(
                "b_hh",
                "b_ih is given but b_hh is None; pass both biases or neither",
            )),
            (None, Some(_)) => Err(RnnError::argument(
                "b_ih",
                "b_hh is given but b_ih is None; pass both biases or neither",
            )),
        }
    }
}

#[cfg(test)]
mod finite_tests {
    use super::*;

    #[test]
    fn finds_every_kind_of_non_finite_at_every_position() {
        for len in [0usize, 1, 7, 15, 16, 17, 33, 100] {
            let ok: Vec<f32> = (0..len).map(|i| i as f32 * 1e30).collect();
            assert!(check_finite("a", &ok).is_ok());
            for pos in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut v = ok.clone();
                    v[pos] = bad;
                    assert_eq!(check_finite("a", &v), Err(RnnError::non_finite("a")));
                }
            }
        }
        assert!(check_finite("b", &[f64::MAX, f64::MIN, 0.0]).is_ok());
    }
}
