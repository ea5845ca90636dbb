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
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn is_finite(self) -> bool;

    /// Logistic sigmoid `1 / (1 + e^-x)`; saturates to exactly 0 or 1 without NaN.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

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

macro_rules! impl_real {
    ($t:ty, $name:literal) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
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
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_real!(f32, "float32");
impl_real!(f64, "float64");

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
    fn relu_clamps_negative() {
        assert_eq!(Real::relu(-2.0f32), 0.0);
        assert_eq!(Real::relu(2.5f64), 2.5);
    }
}
