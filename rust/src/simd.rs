//! Runtime SIMD dispatch for the pointwise kernels.
//!
//! The pointwise loops are written once, as plain Rust over slices with no calls
//! and no branches in the inner loop (see [`Real::tanh_fast`]). The
//! [`multiversion!`] macro compiles each of them several times, with AVX-512,
//! with AVX2 + FMA and with no extra features, and the caller picks one at run
//! time from what the CPU supports ([`best_level`]), so one wheel runs on any
//! x86-64 CPU at the speed of the one it is on.
//!
//! All variants perform the same IEEE operations per element (Rust never fuses
//! a multiply and an add on its own), so they give bitwise the same results;
//! the tests check that at awkward lengths.
//!
//! [`Real::tanh_fast`]: crate::real::Real::tanh_fast

use std::sync::OnceLock;

/// An instruction-set level the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Plain code: SSE2 on x86-64, whatever the target has elsewhere.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 (F, VL, DQ, BW).
    Avx512,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2+fma",
            Level::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run code compiled for `self`.
    pub fn supported(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// The environment variable that caps the level the kernels run at, read once
/// at the first kernel call: `avx512`, `avx2` (or `avx2+fma`) or `scalar`. A
/// level above what the CPU has runs at the best level it has. It lets the
/// fallbacks be tested and measured on a CPU with more (the `gemm` crate's
/// products dispatch on their own and are not capped). Any other value is
/// refused by the Python layer before the kernels load.
pub const LEVEL_VAR: &str = "RNNCORE_SIMD";

/// The level a value of [`LEVEL_VAR`] names, or None.
pub fn parse_level(value: &str) -> Option<Level> {
    match value.trim().to_ascii_lowercase().as_str() {
        "avx512" => Some(Level::Avx512),
        "avx2" | "avx2+fma" => Some(Level::Avx2),
        "scalar" => Some(Level::Scalar),
        _ => None,
    }
}

/// The best level this CPU supports, capped by [`LEVEL_VAR`] (decided once).
pub fn best_level() -> Level {
    static BEST: OnceLock<Level> = OnceLock::new();
    *BEST.get_or_init(|| {
        let cap = std::env::var(LEVEL_VAR)
            .ok()
            .as_deref()
            .and_then(parse_level)
            .unwrap_or(Level::Avx512);
        effective(cap)
    })
}

/// The level to run at when `level` is asked for: the best supported level
/// that is not above it.
pub fn effective(level: Level) -> Level {
    match level {
        Level::Avx512 if Level::Avx512.supported() => Level::Avx512,
        Level::Avx512 | Level::Avx2 if Level::Avx2.supported() => Level::Avx2,
        _ => Level::Scalar,
    }
}

/// The one place that picks a twin for a level: `dispatch!(level, avx512 =>
/// call, avx2 => call, scalar => call)` runs the call compiled for the best
/// level the CPU has that is not above `level` (see [`effective`]).
macro_rules! dispatch {
    ($level:expr, avx512 => $avx512:expr, avx2 => $avx2:expr, scalar => $scalar:expr $(,)?) => {
        match $crate::simd::effective($level) {
            // SAFETY: `effective` returns a level only if the CPU reports
            // every feature its twin is compiled with.
            #[cfg(target_arch = "x86_64")]
            $crate::simd::Level::Avx512 => unsafe { $avx512 },
            // SAFETY: as above, AVX2 and FMA are present.
            #[cfg(target_arch = "x86_64")]
            $crate::simd::Level::Avx2 => unsafe { $avx2 },
            _ => $scalar,
        }
    };
}

/// Define `pub fn name<F: Real>(level: Level, args...) -> T` whose body is
/// compiled three times: as an `#[inline(always)]` function, inlined into a
/// twin compiled with AVX-512 and one with AVX2 + FMA; [`dispatch!`] picks the
/// twin for `level`. Inlining a plain function into a function with more
/// target features is what lets LLVM vectorise the body for those features.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<$f:ident: Real>($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$f: $crate::real::Real>(level: $crate::simd::Level, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$f: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512<$f: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<$f: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            $crate::simd::dispatch!(
                level,
                avx512 => avx512($($arg),*),
                avx2 => avx2($($arg),*),
                scalar => body($($arg),*)
            )
        }
    };
}

pub(crate) use {dispatch, multiversion};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_parse_and_a_cap_never_exceeds_the_cpu() {
        assert_eq!(parse_level("avx512"), Some(Level::Avx512));
        assert_eq!(parse_level(" AVX2 "), Some(Level::Avx2));
        assert_eq!(parse_level("avx2+fma"), Some(Level::Avx2));
        assert_eq!(parse_level("scalar"), Some(Level::Scalar));
        assert_eq!(parse_level("sse4"), None);
        for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
            let run = effective(level);
            assert!(run.supported());
            assert!(run as u8 <= level as u8);
        }
        assert!(best_level().supported());
    }
}
