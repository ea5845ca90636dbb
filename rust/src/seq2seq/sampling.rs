//! Scheduled sampling (Bengio et al. 2015) inside the decoder loop: at every step
//! `t >= 1`, each batch row independently, with probability `p`, is fed the
//! embedding of the model's own prediction at step `t-1` instead of its teacher
//! input:
//!
//! ```text
//! logits_{t-1} = output_{t-1} @ head_w^T + head_b    (N, V), output = [h; context]
//! fed_t[b] = argmax logits_{t-1}[b]  if flip(seed, b, t) else ids[t, b]
//! y_t[b]   = embedding[fed_t[b]]                      (E,)
//! ```
//!
//! The choice is a constant for the backward: no gradient flows through the
//! argmax, and the input gradient of step `t` belongs to the row `fed_t[b]` of
//! the embedding. The coin flips come from one splitmix64 stream per row, seeded
//! by `(seed, row)` ([`RowFlips`]), so they depend on neither the other rows nor
//! the thread count. `rnncore.reference.decoder.sampling_flips` draws the same.

use crate::buffer::{filled, zeros};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul, MatMut, MatRef};
use crate::real::Real;
use crate::sequence::check_finite;

/// What scheduled sampling needs besides the decoder's own inputs.
#[derive(Debug, Clone, Copy)]
pub struct Sampling<'a, F> {
    /// Probability in `[0, 1]` that a row at step `t >= 1` is fed its own
    /// prediction; 0 is teacher forcing (the kernel's teacher-forced path).
    pub p: f64,
    /// Seed of the coin flips.
    pub seed: u64,
    /// Vocabulary `V`.
    pub v: usize,
    /// `(T, N)` teacher ids in `0..V`; `y[t, b]` must be `embedding[ids[t, b]]`.
    pub ids: &'a [usize],
    /// `(V, E)` the target embedding table.
    pub embedding: &'a [F],
    /// `(V, H + M)` the head that reads `[h_t; context_t]`.
    pub head_w: &'a [F],
    /// `(V,)` its bias, or `None`.
    pub head_b: Option<&'a [F]>,
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function (a bijection of `u64`).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The coin flips of one batch row: a splitmix64 generator whose state starts
/// at `mix(seed ^ mix(row + 1))`; step `t >= 1` uses its `t`-th output `u`, and
/// samples when `(u >> 11) * 2^-53 < p`.
#[derive(Debug, Clone, Copy)]
pub struct RowFlips {
    state: u64,
}

impl RowFlips {
    pub fn new(seed: u64, row: usize) -> Self {
        Self {
            state: mix(seed ^ mix((row as u64).wrapping_add(1))),
        }
    }

    /// The next uniform draw in `[0, 1)` (53 random bits).
    pub fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(GOLDEN);
        (mix(self.state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl<F: Real> Sampling<'_, F> {
    /// Check the sampling inputs against the decoder's sizes `T, N, E, H + M`
    /// and `y (T, N, E)`.
    pub(super) fn check(&self, t: usize, n: usize, e: usize, hm: usize, y: &[F]) -> Result<()> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(RnnError::argument(
                "p",
                format!("must lie in [0, 1], got {}", self.p),
            ));
        }
        let v = self.v;
        if v == 0 {
            return Err(RnnError::shape("V", "must be at least 1"));
        }
        if v.checked_mul(e.max(hm).max(n)).is_none() {
            return Err(RnnError::shape("embedding", "sizes are too large"));
        }
        super::decoder::len("ids", self.ids, t * n)?;
        super::decoder::len("embedding", self.embedding, v * e)?;
        super::decoder::len("head_weight", self.head_w, v * hm)?;
        if let Some(b) = self.head_b {
            super::decoder::len("head_bias", b, v)?;
        }
        if let Some(i) = self.ids.iter().position(|&id| id >= v) {
            return Err(RnnError::argument(
                "ids",
                format!(
                    "must lie in 0..{}, got {} (flat index {i})",
                    v - 1,
                    self.ids[i]
                ),
            ));
        }
        check_finite("embedding", self.embedding)?;
        check_finite("head_weight", self.head_w)?;
        if let Some(b) = self.head_b {
            check_finite("head_bias", b)?;
        }
        let rows = self.ids.iter().zip(y.chunks_exact(e.max(1)));
        if e > 0 {
            for (i, (&id, row)) in rows.enumerate() {
                if row != &self.embedding[id * e..][..e] {
                    return Err(RnnError::argument(
                        "y",
                        format!("must be the embedding rows of ids; row {i} is not"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The state of scheduled sampling during one forward: every row's flips, the
/// logits scratch and the ids fed so far.
pub(super) struct Sampler<'a, F> {
    s: Sampling<'a, F>,
    n: usize,
    e: usize,
    hm: usize,
    flips: Vec<RowFlips>, // (N,)
    sampled: Vec<bool>,   // (N,) this step's flips
    logits: Vec<F>,       // (N, V)
    /// `(T, N)` the ids fed at every step.
    pub fed: Vec<usize>,
}

impl<'a, F: Real> Sampler<'a, F> {
    pub(super) fn new(s: Sampling<'a, F>, n: usize, e: usize, hm: usize) -> Result<Self> {
        let mut flips = crate::buffer::with_capacity(n, "sampling")?;
        flips.extend((0..n).map(|b| RowFlips::new(s.seed, b)));
        let mut fed = crate::buffer::with_capacity(s.ids.len(), "fed ids")?;
        fed.extend_from_slice(s.ids);
        Ok(Self {
            s,
            n,
            e,
            hm,
            flips,
            sampled: filled(n, false, "sampling")?,
            logits: zeros(n * s.v, "logits")?,
            fed,
        })
    }

    /// Choose the inputs of step `t >= 1` from the previous step's output
    /// `prev (N, H + M)`: overwrite the sampled rows of `y_t (N, E)` and of the
    /// fed ids. Every row draws one flip per step whatever the outcome.
    pub(super) fn choose(&mut self, t: usize, prev: &[F], y_t: &mut [F]) {
        let (n, e, v) = (self.n, self.e, self.s.v);
        for (flag, flips) in self.sampled.iter_mut().zip(&mut self.flips) {
            *flag = flips.next_unit() < self.s.p;
        }
        if !self.sampled.contains(&true) {
            return;
        }
        matmul(
            MatMut::row_major(&mut self.logits, n, v),
            MatRef::row_major(prev, n, self.hm),
            MatRef::row_major(self.s.head_w, v, self.hm).t(),
            false,
        );
        for b in (0..n).filter(|&b| self.sampled[b]) {
            let row = &mut self.logits[b * v..][..v];
            if let Some(bias) = self.s.head_b {
                for (x, &c) in row.iter_mut().zip(bias) {
                    *x += c;
                }
            }
            let id = argmax(row);
            self.fed[t * n + b] = id;
            y_t[b * e..][..e].copy_from_slice(&self.s.embedding[id * e..][..e]);
        }
    }
}

/// The first index of the largest value, as NumPy's `argmax` (the first NaN wins).
fn argmax<F: Real>(row: &[F]) -> usize {
    let is_nan = |x: F| x.partial_cmp(&x).is_none();
    let mut best = 0;
    for (j, &x) in row.iter().enumerate().skip(1) {
        if is_nan(row[best]) {
            break;
        }
        if x > row[best] || is_nan(x) {
            best = j;
        }
    }
    best
}
