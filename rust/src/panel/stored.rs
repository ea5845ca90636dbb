//! Panels that keep their weights in fewer bytes, for decoding: `bfloat16`, or
//! `int8` with one scale per weight row. A batch-1 decoding step reads every
//! weight once and little else, so its time is the bytes it streams; these
//! halve or quarter them. The weights are widened to the compute type in
//! registers, inside the panel product ([`accumulate`]).
//!
//! - `bfloat16`: the top 16 bits of the `f32`, rounded to nearest (ties to
//!   even). Widening is a shift, exact.
//! - `int8`: row `i` of `W (G*H, K)` is `q[i, k] * s[i]` with
//!   `s[i] = max_k |W[i, k]| / 127` and `q = round(W / s)` in `[-127, 127]`.
//!   The product widens `q` and multiplies it by its column's scale in
//!   registers: the dequantized weight, rounded as [`dequantized`] rounds it,
//!   so the sums are those of the full model of the dequantized weights (and
//!   cannot overflow where that model's do not).

use crate::error::{Result, RnnError};
use crate::real::Real;

use super::{accumulate, Layout};

/// How a decoder's panels keep their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The model's own float type.
    Full,
    Bf16,
    Int8,
}

impl Storage {
    /// `"full"`, `"bfloat16"` or `"int8"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "full" => Ok(Self::Full),
            "bfloat16" => Ok(Self::Bf16),
            "int8" => Ok(Self::Int8),
            other => Err(RnnError::argument(
                "weights",
                format!("must be 'full', 'bfloat16' or 'int8', got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Bf16 => "bfloat16",
            Self::Int8 => "int8",
        }
    }
}

/// A `bfloat16`: the sign, exponent and top 7 mantissa bits of an `f32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Bf16(pub u16);

impl Bf16 {
    /// The nearest `bfloat16` to `x`, ties to even (finite `x`; a NaN stays NaN).
    pub fn round(x: f32) -> Self {
        let bits = x.to_bits();
        if x.is_nan() {
            return Self((bits >> 16) as u16 | 0x40);
        }
        let lsb = (bits >> 16) & 1;
        Self((bits.wrapping_add(0x7fff + lsb) >> 16) as u16)
    }

    #[inline(always)]
    pub fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self.0) << 16)
    }
}

/// A weight as a panel keeps it, widened to `R` where the product reads it.
pub trait Stored<R>: Copy + Send + Sync + 'static {
    fn widen(self) -> R;
}

impl<R: Real> Stored<R> for R {
    #[inline(always)]
    fn widen(self) -> R {
        self
    }
}

impl<R: Real> Stored<R> for Bf16 {
    #[inline(always)]
    fn widen(self) -> R {
        R::from_f32(self.to_f32())
    }
}

impl<R: Real> Stored<R> for i8 {
    #[inline(always)]
    fn widen(self) -> R {
        R::from_f32(f32::from(self))
    }
}

/// `v` rounded to bfloat16 (an `f64` goes through `f32` first).
fn bf16_of<R: Real>(v: R) -> Bf16 {
    Bf16::round(v.to_f64() as f32)
}

/// The int8 scale of each row of `w (rows, K)`: `max_k |w[i, k]| / 127`.
fn row_scales<R: Real>(w: &[R], rows: usize, k: usize) -> Vec<R> {
    (0..rows)
        .map(|r| {
            let max = w[r * k..][..k]
                .iter()
                .fold(0.0f64, |m, &v| m.max(v.to_f64().abs()));
            R::from_f64(max / 127.0)
        })
        .collect()
}

/// `v / s` rounded to the nearest integer (ties to even) in `[-127, 127]`; 0 for `s = 0`.
fn quantize<R: Real>(v: R, s: R) -> i8 {
    let s = s.to_f64();
    if s == 0.0 {
        0
    } else {
        (v.to_f64() / s).round_ties_even().clamp(-127.0, 127.0) as i8
    }
}

/// `w (rows, K)` row-major as `storage` keeps it, widened back to `R`: the
/// weights the products compute with. A compressed decoder is, bitwise, the
/// full decoder of these weights.
pub fn dequantized<R: Real>(storage: Storage, w: &[R], rows: usize, k: usize) -> Vec<R> {
    match storage {
        Storage::Full => w.to_vec(),
        Storage::Bf16 => w.iter().map(|&v| bf16_of(v).widen()).collect(),
        Storage::Int8 => {
            let scales = row_scales(w, rows, k);
            w.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let s = scales[i / k.max(1)];
                    Stored::<R>::widen(quantize(v, s)) * s
                })
                .collect()
        }
    }
}

/// A matrix `(G*H, K)` packed as panels `(blocks, K, P)` (see [`Layout`]).
pub enum Panels<R> {
    Full(Vec<R>),
    Bf16(Vec<Bf16>),
    /// `q (blocks, K, P)` and each panel column's scale `(blocks, P)`.
    Int8 {
        q: Vec<i8>,
        scale: Vec<R>,
    },
}

impl<R: Real> Panels<R> {
    /// No weights (a layer whose input is a table).
    pub fn empty() -> Self {
        Self::Full(Vec::new())
    }

    /// `w (G*H, K)` row-major, packed by `layout` and kept as `storage` says.
    pub fn new(storage: Storage, layout: &Layout, w: &[R], k: usize) -> Self {
        let full = layout.pack(w, k);
        match storage {
            Storage::Full => Self::Full(full),
            Storage::Bf16 => Self::Bf16(full.iter().map(|&v| bf16_of(v)).collect()),
            Storage::Int8 => {
                let scale = layout.pack_vector(&row_scales(w, layout.gates * layout.units, k));
                let p = layout.width;
                let q = full
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| quantize(v, scale[(i / (k * p)) * p + i % p]))
                    .collect();
                Self::Int8 { q, scale }
            }
        }
    }

    /// How the weights are kept.
    pub fn storage(&self) -> Storage {
        match self {
            Self::Full(_) => Storage::Full,
            Self::Bf16(_) => Storage::Bf16,
            Self::Int8 { .. } => Storage::Int8,
        }
    }

    /// Bytes of the kept weights (and scales).
    pub fn bytes(&self) -> usize {
        match self {
            Self::Full(w) => std::mem::size_of_val(&w[..]),
            Self::Bf16(w) => std::mem::size_of_val(&w[..]),
            Self::Int8 { q, scale } => q.len() + std::mem::size_of_val(&scale[..]),
        }
    }

    /// The weights as the products see them, `(blocks, K, P)` in `R`: what a
    /// full-precision model with these weights would hold.
    #[cfg(test)]
    pub fn widened(&self, k: usize, width: usize) -> Vec<R> {
        match self {
            Self::Full(w) => w.clone(),
            Self::Bf16(w) => w.iter().map(|&v| v.widen()).collect(),
            Self::Int8 { q, scale } => q
                .iter()
                .enumerate()
                .map(|(i, &v)| Stored::<R>::widen(v) * scale[(i / (k * width)) * width + i % width])
                .collect(),
        }
    }

    /// `acc[r] += xs[r] @ panel b` for `NR` rows (`xs[r]` of `K` features),
    /// with the weights widened (and, for `int8`, scaled) in registers.
    #[inline(always)]
    pub fn accumulate<const P: usize, const Q: usize, const NR: usize, const FUSED: bool>(
        &self,
        b: usize,
        xs: [&[R]; NR],
        acc: &mut [[R; P]; NR],
    ) {
        let k = xs[0].len();
        match self {
            Self::Full(w) => accumulate::<R, R, P, Q, NR, FUSED>(&w[b * k * P..], None, xs, acc),
            Self::Bf16(w) => accumulate::<R, Bf16, P, Q, NR, FUSED>(&w[b * k * P..], None, xs, acc),
            Self::Int8 { q, scale } => {
                let s: &[R; P] = scale[b * P..][..P].try_into().expect("P scales");
                accumulate::<R, i8, P, Q, NR, FUSED>(&q[b * k * P..], Some(s), xs, acc)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even_and_widens_exactly() {
        assert_eq!(Bf16::round(1.0).to_f32(), 1.0);
        assert_eq!(Bf16::round(-2.5).to_f32(), -2.5);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
        assert_eq!(Bf16::round(1.0 + 2f32.powi(-8)).to_f32(), 1.0);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to the even one.
        assert_eq!(
            Bf16::round(1.0 + 3.0 * 2f32.powi(-8)).to_f32(),
            1.0 + 2f32.powi(-6)
        );
        assert_eq!(
            Bf16::round(1.0 + 2f32.powi(-8) + 2f32.powi(-20)).to_f32(),
            1.0 + 2f32.powi(-7)
        );
        for x in [0.1f32, -3.7e-5, 123.456, f32::MAX / 2.0, 1e-38] {
            let y = Bf16::round(x).to_f32();
            assert!((y - x).abs() <= x.abs() * 2f32.powi(-8), "{x} -> {y}");
        }
        assert!(Bf16::round(f32::NAN).to_f32().is_nan());
        assert_eq!(Bf16::round(f32::INFINITY).to_f32(), f32::INFINITY);
    }

    #[test]
    fn int8_rows_keep_every_weight_within_half_a_step_of_their_scale() {
        let (g, h, k) = (4, 5, 7);
        let layout = Layout::new::<f64>(g, h);
        let w: Vec<f64> = (0..g * h * k)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) * 0.013)
            .collect();
        let mut w0 = w.clone();
        w0[3 * k..4 * k].iter_mut().for_each(|v| *v = 0.0); // a row of zeros
        let p = Panels::new(Storage::Int8, &layout, &w0, k);
        let wide = p.widened(k, layout.width);
        let back = layout.pack(&w0, k);
        for row in 0..g * h {
            let max = w0[row * k..][..k]
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            let step = max / 127.0;
            for kk in 0..k {
                let (gate, unit) = (row / h, row % h);
                let (b, u) = (unit / layout.unit, unit % layout.unit);
                let at = (b * k + kk) * layout.width + gate * layout.unit + u;
                assert!(
                    (wide[at] - back[at]).abs() <= 0.5 * step + 1e-15,
                    "row {row}"
                );
            }
        }
        for (a, b) in wide.iter().zip(&back) {
            if *b == 0.0 {
                assert_eq!(*a, 0.0, "zeros (padding, a zero row) stay zero");
            }
        }
        assert_eq!(p.bytes(), back.len() + 8 * layout.blocks * layout.width);
    }

    #[test]
    fn storage_names_round_trip() {
        for s in [Storage::Full, Storage::Bf16, Storage::Int8] {
            assert_eq!(Storage::from_name(s.name()).unwrap(), s);
        }
        assert!(Storage::from_name("int4").is_err());
    }
}
