//! Products of the small networks without packing: C ← α·op(A)·op(B) + β·C when the product
//! is below the size where it is split over threads and C's row is a whole number of tiles.
//!
//! matrixmultiply packs both operands into panels before its microkernel runs; on the 32-wide
//! layers of a batch of 2000 events (k = 32), packing takes as long as the multiply-adds (the
//! profile of `blobs --hidden 32`). Here op(B) is read in place when its rows are contiguous
//! (copied once into a buffer of at most [`MAX_COPIED`] elements when they are not, as for the
//! A·Bᵀ of the backward pass), op(A) is read element by element with its strides, and C is
//! computed by tiles of MR rows × NR columns held in registers over the whole k loop: each step
//! of k loads one row of NR values of op(B), broadcasts MR values of op(A), and does MR·NR
//! multiply-adds. The tile's arrays have sizes known at compile time, so LLVM unrolls and
//! vectorises them on the AVX-512, AVX2 or portable path chosen at run time. A product with one
//! column (the last layer of a one-output network, and its weight gradient) is a matrix–vector
//! product: dot products of op(A)'s rows, or multiples of its columns added into C.

use super::{Product, Strided};

/// The most elements of op(B) copied to make its rows contiguous: 32 KiB of f64, so that the
/// copy stays in the first-level cache and costs a small part of the product.
const MAX_COPIED: usize = 4096;

/// An element type of the kernel.
pub(super) trait Scalar:
    Copy + Default + PartialEq + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self>
{
    /// Columns per tile: four 256-bit vectors.
    const NR: usize;
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Scalar for f64 {
    const NR: usize = 16;
    #[inline(always)]
    fn mul_add(self, a: f64, b: f64) -> f64 {
        f64::mul_add(self, a, b)
    }
}

impl Scalar for f32 {
    const NR: usize = 32;
    #[inline(always)]
    fn mul_add(self, a: f32, b: f32) -> f32 {
        f32::mul_add(self, a, b)
    }
}

/// The instruction-set paths of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Portable,
    Avx2,
    Avx512,
}

fn path() -> Path {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
            return Path::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Path::Avx2;
        }
    }
    Path::Portable
}

/// Whether this kernel takes the product: C's rows are contiguous and a whole number of tiles,
/// and op(B)'s rows are contiguous or small enough to copy; or C is one column (a product of a
/// matrix and a vector, as the last layer of a one-output network and its weight gradient) with
/// op(A)'s rows contiguous, or op(A)'s columns and C contiguous.
pub(super) fn applies<T: Scalar>(p: &Product<T>) -> bool {
    if p.n == 1 {
        return (p.a.cs == 1 || (p.a.rs == 1 && p.c.rs == 1)) && (p.b.rs == 1 || p.k <= MAX_COPIED);
    }
    p.c.cs == 1 && p.n % T::NR == 0 && (p.b.cs == 1 || p.k * p.n <= MAX_COPIED)
}

/// C ← α·op(A)·op(B) + β·C for the m rows of op(A).
///
/// # Safety
/// The product's pointers, dimensions and strides must describe live arrays with m rows in
/// op(A) and C, C must not overlap A or B and be written by no one else during the call, and
/// [`applies`] must hold.
pub(super) unsafe fn product<T: Scalar>(p: &Product<T>, m: usize) {
    let (k, n, b) = (p.k, p.n, p.b);
    // op(B)'s rows as the kernels read them: a vector of k values when n = 1.
    let contiguous = if n == 1 { b.rs == 1 } else { b.cs == 1 };
    if contiguous {
        // SAFETY: the caller's promise, with op(B)'s rows contiguous.
        unsafe { dispatch(p, m, b) }
    } else {
        let mut copied = [T::default(); MAX_COPIED];
        for l in 0..k {
            for j in 0..n {
                // SAFETY: (l, j) lies inside op(B) [k, n] (the caller's promise).
                copied[l * n + j] = unsafe { *b.ptr.offset(l as isize * b.rs + j as isize * b.cs) };
            }
        }
        // SAFETY: the caller's promise, with op(B) copied to contiguous rows.
        unsafe { dispatch(p, m, Strided { ptr: copied.as_ptr(), rs: n as isize, cs: 1 }) }
    }
}

/// [`product`] on the fastest path this CPU has, with op(B) read from `b`.
///
/// # Safety
/// As [`product`], with `b` holding op(B) in contiguous rows.
unsafe fn dispatch<T: Scalar>(p: &Product<T>, m: usize, b: Strided<*const T>) {
    // SAFETY (of each arm): the caller's promise, and the path was detected on this CPU.
    match path() {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe {
            with_avx512(|| if p.n == 1 { matvec::<T, true>(p, m, b) } else { tiles::<T, 4, true>(p, m, b) })
        },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe {
            with_avx2(|| if p.n == 1 { matvec::<T, true>(p, m, b) } else { tiles::<T, 2, true>(p, m, b) })
        },
        _ => unsafe {
            if p.n == 1 {
                matvec::<T, false>(p, m, b)
            } else {
                tiles::<T, 2, false>(p, m, b)
            }
        },
    }
}

/// Runs `f` compiled for AVX-512 (the closure is inlined here).
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512(f: impl FnOnce()) {
    f()
}

/// Runs `f` compiled for AVX2 and FMA (the closure is inlined here).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2(f: impl FnOnce()) {
    f()
}

/// C [m, 1] ← α·op(A)·b + β·C: dot products of op(A)'s rows with b when the rows are
/// contiguous (in 16 partial sums, added in a fixed order), else C accumulates b's multiples
/// of op(A)'s contiguous columns.
///
/// # Safety
/// As [`dispatch`] with n = 1 and [`applies`].
#[inline(always)]
unsafe fn matvec<T: Scalar, const FUSED: bool>(p: &Product<T>, m: usize, b: Strided<*const T>) {
    const LANES: usize = 16;
    let (a, c, k, alpha, beta) = (&p.a, &p.c, p.k, p.alpha, p.beta);
    let fma = |x: T, y: T, s: T| if FUSED { x.mul_add(y, s) } else { s + x * y };
    let zero = T::default();
    // SAFETY: op(B) is k contiguous values (the caller's promise).
    let v = unsafe { std::slice::from_raw_parts(b.ptr, k) };
    if a.cs == 1 {
        for i in 0..m {
            // SAFETY: row i of op(A) is k contiguous values.
            let row = unsafe { std::slice::from_raw_parts(a.ptr.offset(i as isize * a.rs), k) };
            let mut acc = [zero; LANES];
            let (rows, vs) = (row.chunks_exact(LANES), v.chunks_exact(LANES));
            let (row_rest, v_rest) = (rows.remainder(), vs.remainder());
            for (x, y) in rows.zip(vs) {
                for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
                    *s = fma(x, y, *s);
                }
            }
            for ((s, &x), &y) in acc.iter_mut().zip(row_rest).zip(v_rest) {
                *s = fma(x, y, *s);
            }
            let sum = acc.iter().fold(zero, |t, &s| t + s);
            // SAFETY: C's row i is inside C and no one else writes it.
            let out = unsafe { &mut *c.ptr.offset(i as isize * c.rs) };
            *out = if beta == zero { alpha * sum } else { alpha * sum + beta * *out };
        }
    } else {
        // SAFETY: C is m contiguous values here (`applies`), written by no one else.
        let out = unsafe { std::slice::from_raw_parts_mut(c.ptr, m) };
        for o in out.iter_mut() {
            // β = 0 overwrites C, so that NaN or garbage in it does not leak into the result.
            *o = if beta == zero { zero } else { beta * *o };
        }
        for (l, &y) in v.iter().enumerate() {
            // SAFETY: column l of op(A) is m contiguous values (`applies`: a.rs == 1).
            let column = unsafe { std::slice::from_raw_parts(a.ptr.offset(l as isize * a.cs), m) };
            let y = alpha * y;
            for (o, &x) in out.iter_mut().zip(column) {
                *o = fma(x, y, *o);
            }
        }
    }
}

/// The tiles of C, MR rows at a time (then the remaining rows one by one), with fused
/// multiply-adds where the path has them (`FUSED`).
///
/// # Safety
/// As [`dispatch`].
#[inline(always)]
unsafe fn tiles<T: Scalar, const MR: usize, const FUSED: bool>(p: &Product<T>, m: usize, b: Strided<*const T>) {
    let mut i = 0;
    while i + MR <= m {
        for j in (0..p.n).step_by(T::NR) {
            // SAFETY: rows i..i + MR and columns j..j + NR lie inside C (NR divides n).
            unsafe { tile::<T, MR, FUSED>(p, i, j, &b) };
        }
        i += MR;
    }
    while i < m {
        for j in (0..p.n).step_by(T::NR) {
            // SAFETY: as above, for one row.
            unsafe { tile::<T, 1, FUSED>(p, i, j, &b) };
        }
        i += 1;
    }
}

/// One tile: rows i..i + R, columns j..j + NR of C.
///
/// # Safety
/// The tile must lie inside C, op(A)'s rows i..i + R and op(B)'s columns j..j + NR inside
/// theirs, and op(B)'s rows must be contiguous in `b`.
#[inline(always)]
unsafe fn tile<T: Scalar, const R: usize, const FUSED: bool>(
    p: &Product<T>,
    i: usize,
    j: usize,
    b: &Strided<*const T>,
) {
    let (a, c, alpha, beta) = (&p.a, &p.c, p.alpha, p.beta);
    // NR is an associated constant, which array lengths cannot name in a generic function, so
    // the tile is the widest NR (32) and only the first NR columns are used; the unused
    // columns are never read or written, and LLVM removes them.
    const W: usize = 32;
    let nr = T::NR;
    debug_assert!(nr <= W);
    let mut acc = [[T::default(); W]; R];
    for l in 0..p.k {
        // SAFETY: row l of op(B) holds columns j..j + NR (the caller's promise), contiguous.
        let row = unsafe { std::slice::from_raw_parts(b.ptr.offset(l as isize * b.rs + j as isize), nr) };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: (i + r, l) lies inside op(A).
            let x = unsafe { *a.ptr.offset((i + r) as isize * a.rs + l as isize * a.cs) };
            for (s, &y) in acc[..nr].iter_mut().zip(row) {
                *s = if FUSED { x.mul_add(y, *s) } else { *s + x * y };
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row i + r of C holds columns j..j + NR, contiguous (c.cs == 1), and no one
        // else writes it.
        let out = unsafe { std::slice::from_raw_parts_mut(c.ptr.offset((i + r) as isize * c.rs + j as isize), nr) };
        if beta == T::default() {
            // β = 0 overwrites C, so that NaN or garbage in it does not leak into the result.
            for (o, &s) in out.iter_mut().zip(&acc[..nr]) {
                *o = alpha * s;
            }
        } else {
            for (o, &s) in out.iter_mut().zip(&acc[..nr]) {
                *o = alpha * s + beta * *o;
            }
        }
    }
}
