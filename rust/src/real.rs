//! The floating-point element type of the kernels: `f32` or `f64`.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A float the kernels compute in. Implemented for `f32` and `f64` only: these are
/// the two types the GEMM crate multiplies natively.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    /// Name of the type as NumPy spells it (`"float32"`, `"float64"`).
    const NAME: &'static str;

    fn from_f64(v: f64) -> Self;
    /// `v` exactly (`f32` and `f64` hold every `f32`).
    fn from_f32(v: f32) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn is_finite(self) -> bool;
    /// `self * a + b` with one rounding (a fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// Logistic sigmoid `1 / (1 + e^-x)`; saturates to exactly 0 or 1 without NaN.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

    /// The one `tanh` of the kernels: branch-free, with no library call, so the
    /// loops over it vectorise. For `f32` a rational minimax approximation
    /// (absolute error below 5e-7, see [`tanh_rational`]); for `f64`
    /// [`crate::vmath::tanh`], within 8 ulp of the library function.
    fn tanh_fast(self) -> Self;

    /// Sigmoid as the kernels compute it: `0.5 + 0.5 * tanh(x / 2)` with
    /// [`tanh_fast`](Real::tanh_fast) for `f32`; [`sigmoid`](Real::sigmoid) for `f64`.
    fn sigmoid_fast(self) -> Self;

    /// `max(x, 0)`.
    #[inline(always)]
    fn relu(self) -> Self {
        if self > Self::ZERO {
            self
        } else {
            Self::ZERO
        }
    }
}

/// `tanh(x)` for `f32` as the ratio of an odd degree-13 and an even degree-6
/// polynomial, with `x` clamped to `[-7.905, 7.905]` (beyond that `tanh` is 1 in
/// `f32`). The minimax coefficients are those of Eigen's `generic_fast_tanh_float`.
/// Only multiplications, additions, one division and a clamp: the loops that
/// call it vectorise.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, digit for digit
pub fn tanh_rational(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_671_5e-11;
    const A11: f32 = 2.000_187_9e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525_2e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = x * (A1 + x2 * (A3 + x2 * (A5 + x2 * (A7 + x2 * (A9 + x2 * (A11 + x2 * A13))))));
    let q = B0 + x2 * (B2 + x2 * (B4 + x2 * B6));
    p / q
}

macro_rules! impl_real {
    ($t:ty, $name:literal, $tanh_fast:expr, $sigmoid_fast:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                $tanh_fast(self)
            }
            #[inline(always)]
            fn sigmoid_fast(self) -> Self {
                $sigmoid_fast(self)
            }
        }
    };
}

impl_real!(f32, "float32", tanh_rational, |x: f32| 0.5
    + 0.5 * tanh_rational(0.5 * x));
impl_real!(f64, "float64", crate::vmath::tanh, |x: f64| 1.0
    / (1.0 + (-x).exp()));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_saturates_without_nan() {
        assert_eq!(Real::sigmoid(-1000.0f64), 0.0);
        assert_eq!(Real::sigmoid(1000.0f64), 1.0);
        assert_eq!(Real::sigmoid(-200.0f32), 0.0);
        assert!((Real::sigmoid(0.3f64) - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-16);
    }

    #[test]
    fn fast_f32_activations_are_accurate() {
        let mut worst_tanh = 0.0f64;
        let mut worst_sigmoid = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // -20 .. 20
            let t = (x as f64).tanh();
            worst_tanh = worst_tanh.max((x.tanh_fast() as f64 - t).abs());
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            worst_sigmoid = worst_sigmoid.max((x.sigmoid_fast() as f64 - s).abs());
        }
        assert!(worst_tanh < 5e-7, "tanh error {worst_tanh}");
        assert!(worst_sigmoid < 3e-7, "sigmoid error {worst_sigmoid}");
        assert_eq!(1e-30f32.tanh_fast().signum(), 1.0);
        assert!((1e-3f32.tanh_fast() - 1e-3).abs() < 1e-9);
        assert_eq!(100.0f32.sigmoid_fast(), 1.0);
        assert_eq!((-100.0f32).sigmoid_fast(), 0.0);
    }

    #[test]
    fn relu_clamps_negative() {
        assert_eq!(Real::relu(-2.0f32), 0.0);
        assert_eq!(Real::relu(2.5f64), 2.5);
    }
}
