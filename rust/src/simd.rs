//! Runtime SIMD dispatch for the pointwise kernels.
//!
//! The pointwise loops are written once, as plain Rust over slices with no calls
//! and no branches in the inner loop (see [`Real::tanh_fast`]). This module
//! compiles each of them several times, with AVX-512, with AVX2 + FMA and with
//! no extra features, and picks one at run time from what the CPU supports, so
//! one wheel runs on any x86-64 CPU at the speed of the one it is on.
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

/// The best level this CPU supports (detected once).
pub fn best_level() -> Level {
    static BEST: OnceLock<Level> = OnceLock::new();
    *BEST.get_or_init(|| {
        [Level::Avx512, Level::Avx2]
            .into_iter()
            .find(|l| l.supported())
            .unwrap_or(Level::Scalar)
    })
}

/// Run `body` compiled for `level`, or for the best supported level below it.
///
/// `body` must be `#[inline(always)]` code (closures are): it is inlined into a
/// function compiled with the level's target features.
#[inline(always)]
pub fn dispatch_at<R>(level: Level, body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
        unsafe fn avx512<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        if level == Level::Avx512 && Level::Avx512.supported() {
            // SAFETY: the CPU reports every feature `avx512` is compiled with.
            return unsafe { avx512(body) };
        }
        if level != Level::Scalar && Level::Avx2.supported() {
            // SAFETY: the CPU reports AVX2 and FMA.
            return unsafe { avx2(body) };
        }
    }
    let _ = level;
    body()
}

/// Run `body` compiled for the best level this CPU supports.
#[inline(always)]
pub fn dispatch<R>(body: impl FnOnce() -> R) -> R {
    dispatch_at(best_level(), body)
}
