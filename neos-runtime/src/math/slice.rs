//! Slice kernels: `dst[i] = f(src[i])` for every function of [`crate::math`], with the
//! instruction set chosen at run time.
//!
//! There are two paths. The portable one is the scalar code compiled for the baseline target
//! (SSE2 on x86-64, where LLVM vectorises it two `f64` lanes wide). The AVX2 one is the *same*
//! inlined scalar code compiled under `#[target_feature(enable = "avx2,fma")]`, where LLVM
//! vectorises it four `f64` or eight `f32` lanes wide. FMA is enabled there too, but the
//! functions call no `mul_add` and Rust never fuses a·b + c by itself, so both paths give
//! identical bits; the AVX2 path is only faster. (Fused multiply-adds would save about a third
//! of the operations, at the price of results that depend on the CPU.) The path is chosen
//! once, by `is_x86_feature_detected!`, and the choice is cached ([`Isa::detected`]).
//!
//! Each kernel exists as `name(src, dst)` (the detected path) and `name_on(isa, src, dst)` (a
//! given path, for tests and benchmarks). Slices of different lengths are an error.

// The kernel table below wraps each function in a closure on purpose: LLVM inlines a closure's
// body into the vectorised loop, but not always a function item called through `Fn::call`
// (for Φ it did not, which cost a factor of three).
#![allow(clippy::redundant_closure)]

use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::RunError;

/// An instruction-set path of the slice kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The scalar code compiled for the baseline target; available everywhere.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2Fma,
}

/// 0: not detected yet, 1: portable, 2: AVX2 + FMA.
static DETECTED: AtomicU8 = AtomicU8::new(0);

impl Isa {
    /// The fastest path this CPU supports, detected on the first call and cached.
    pub fn detected() -> Isa {
        match DETECTED.load(Ordering::Relaxed) {
            1 => Isa::Portable,
            2 => Isa::Avx2Fma,
            _ => {
                let isa = if Isa::Avx2Fma.is_available() { Isa::Avx2Fma } else { Isa::Portable };
                DETECTED.store(if isa == Isa::Avx2Fma { 2 } else { 1 }, Ordering::Relaxed);
                isa
            }
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2Fma => avx2_fma_detected(),
        }
    }

    /// Every path this CPU can run, the portable one first.
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2Fma].into_iter().filter(|isa| isa.is_available()).collect()
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn avx2_fma_detected() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn avx2_fma_detected() -> bool {
    false
}

/// The error for slices of different lengths, or for a path this CPU lacks.
fn check<T>(op: &str, isa: Isa, src: &[T], dst: &[T]) -> Result<(), RunError> {
    if src.len() != dst.len() {
        return Err(RunError::new(
            format!("math::slice::{op}"),
            format!("expected an output of {} elements like the input, found {}", src.len(), dst.len()),
        ));
    }
    if !isa.is_available() {
        return Err(RunError::new(
            format!("math::slice::{op}"),
            format!("expected an instruction set this cpu supports, found {isa:?}"),
        ));
    }
    Ok(())
}

/// The loop every kernel runs; inlined into each path so that it is compiled for that path.
///
/// It works in blocks of `BLOCK` elements through `block`, then element by element through
/// `one` (both compute the same bits). LLVM vectorises a block's loops and interleaves their
/// vectors, so that several independent polynomial chains are in flight at once; one vector at
/// a time leaves the core waiting on the latency of each chain and costs about half the
/// throughput. The longest functions (Φ, softplus) have block versions in stages, because
/// LLVM interleaves short loops only.
#[inline(always)]
fn map<T: Copy, const BLOCK: usize>(
    src: &[T],
    dst: &mut [T],
    block: impl Fn(&[T; BLOCK]) -> [T; BLOCK],
    one: impl Fn(T) -> T,
) {
    let mut src_blocks = src.chunks_exact(BLOCK);
    let mut dst_blocks = dst.chunks_exact_mut(BLOCK);
    for (s, d) in (&mut src_blocks).zip(&mut dst_blocks) {
        if let (Ok(s), Ok(d)) = (<&[T; BLOCK]>::try_from(s), <&mut [T; BLOCK]>::try_from(d)) {
            *d = block(s);
        }
    }
    for (d, &s) in dst_blocks.into_remainder().iter_mut().zip(src_blocks.remainder()) {
        *d = one(s);
    }
}

/// A block through a scalar function, element by element.
#[inline(always)]
fn each<T: Copy, const BLOCK: usize>(s: &[T; BLOCK], f: impl Fn(T) -> T) -> [T; BLOCK] {
    let mut d = *s;
    for v in d.iter_mut() {
        *v = f(*v);
    }
    d
}

/// Elements per block: four AVX2 vectors of either type.
const BLOCK_F64: usize = 16;
const BLOCK_F32: usize = 32;

macro_rules! kernels {
    ($($name:ident, $name_on:ident: $ty:ty, $block:expr, $staged:expr;)*) => {
        /// The AVX2 instantiations of the kernels' loop.
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        mod avx2 {
            $(
                /// # Safety
                /// The CPU must support AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                pub(super) unsafe fn $name(src: &[$ty], dst: &mut [$ty]) {
                    super::map::<_, { $block }>(src, dst, $staged, |x| crate::math::$name(x))
                }
            )*
        }

        $(
            #[doc = concat!("`dst[i] = ", "math::", stringify!($name), "(src[i])` on the detected instruction set.")]
            pub fn $name(src: &[$ty], dst: &mut [$ty]) -> Result<(), RunError> {
                $name_on(Isa::detected(), src, dst)
            }

            #[doc = concat!("`dst[i] = ", "math::", stringify!($name), "(src[i])` on the given instruction set; an error if this CPU lacks it.")]
            pub fn $name_on(isa: Isa, src: &[$ty], dst: &mut [$ty]) -> Result<(), RunError> {
                check(stringify!($name), isa, src, dst)?;
                match isa {
                    Isa::Portable => map::<_, { $block }>(src, dst, $staged, |x| crate::math::$name(x)),
                    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
                    // SAFETY: `check` has confirmed that the CPU supports AVX2 and FMA.
                    Isa::Avx2Fma => unsafe { avx2::$name(src, dst) },
                    // Never reached: `check` rejects AVX2 off x86.
                    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
                    Isa::Avx2Fma => map::<_, { $block }>(src, dst, $staged, |x| crate::math::$name(x)),
                }
                Ok(())
            }
        )*
    };
}

kernels! {
    exp_f64, exp_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::slice::each(s, |x| crate::math::exp_f64(x));
    log_f64, log_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::slice::each(s, |x| crate::math::log_f64(x));
    norm_cdf_f64, norm_cdf_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::norm_cdf_f64_block(s);
    norm_pdf_f64, norm_pdf_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::slice::each(s, |x| crate::math::norm_pdf_f64(x));
    sigmoid_f64, sigmoid_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::slice::each(s, |x| crate::math::sigmoid_f64(x));
    tanh_f64, tanh_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::slice::each(s, |x| crate::math::tanh_f64(x));
    softplus_f64, softplus_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::softplus_f64_block(s);
    relu_f64, relu_f64_on: f64, crate::math::slice::BLOCK_F64, |s| crate::math::slice::each(s, |x| crate::math::relu_f64(x));
    exp_f32, exp_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::slice::each(s, |x| crate::math::exp_f32(x));
    log_f32, log_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::slice::each(s, |x| crate::math::log_f32(x));
    norm_cdf_f32, norm_cdf_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::norm_cdf_f32_block(s);
    norm_pdf_f32, norm_pdf_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::slice::each(s, |x| crate::math::norm_pdf_f32(x));
    sigmoid_f32, sigmoid_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::slice::each(s, |x| crate::math::sigmoid_f32(x));
    tanh_f32, tanh_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::slice::each(s, |x| crate::math::tanh_f32(x));
    softplus_f32, softplus_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::softplus_f32_block(s);
    relu_f32, relu_f32_on: f32, crate::math::slice::BLOCK_F32, |s| crate::math::slice::each(s, |x| crate::math::relu_f32(x));
}
