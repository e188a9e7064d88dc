//! Matrix products for the network's layers, on ndarray views of any strides:
//! C ← α·op(A)·op(B) + β·C, with op the identity or the transpose. The backward pass of a dense layer needs
//! Aᵀ·B (weight gradients) and A·Bᵀ (input gradients); transposing is a change of strides,
//! so every variant is a call of matrixmultiply's kernel, which picks AVX2/FMA or AVX-512 at
//! run time.
//!
//! Large products are split by rows of C over rayon's pool, the one pool the histogram kernel
//! uses too, so that the process keeps one set of worker threads (matrixmultiply's own
//! threading kept a second set, handing work over through channels and `sched_yield`). Products
//! below [`PARALLEL_MIN_WORK`] multiply-adds per task run on the calling thread: on the 32-wide
//! network, handing a 4-MFLOP product to another thread and waiting for it costs more than it
//! saves. Of those, the shapes of small networks (C's rows whole tiles of 16 or 32 columns, or
//! a single column) go to a kernel without packing (`small.rs` beside this file), where
//! matrixmultiply would spend as long packing the operands as multiplying them.

use ndarray::{ArrayView2, ArrayViewMut2};

mod small;

/// Whether an operand is used as it is or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

/// Why a product could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

/// (rows, cols, row stride, col stride) of op(X).
fn layout<T>(x: &ArrayView2<'_, T>, op: Op) -> (usize, usize, isize, isize) {
    let (r, c) = x.dim();
    let s = x.strides();
    match op {
        Op::N => (r, c, s[0], s[1]),
        Op::T => (c, r, s[1], s[0]),
    }
}

fn check(m: usize, k: usize, k2: usize, n: usize, c: (usize, usize)) -> Result<(), ShapeError> {
    if k != k2 || c != (m, n) {
        return Err(ShapeError(format!(
            "expected op(A) [m, k] · op(B) [k, n] into C [m, n], found [{m}, {k}] · [{k2}, {n}] into {c:?}"
        )));
    }
    Ok(())
}

/// The multiply-adds (m·k·n) a task must have before a product is split: below it, a product
/// runs on the calling thread. Measured on the hidden layer's product at 2000 events on this
/// 2-core machine (`cargo run --release --example bench_gemm -- --events 2000 --width W`), one
/// task against two: W = 32 (2·10⁶) 0.11 against 0.15 ms, W = 64 (8·10⁶) 0.35 against 0.45 ms,
/// W = 128 (3.3·10⁷) 1.39 against 0.67 ms; so two tasks from 8·10⁶ each.
pub const PARALLEL_MIN_WORK: usize = 1 << 23;

/// Rows of C a task must have, so that each one's packed panels are worth their packing.
const MIN_ROWS_PER_TASK: usize = 64;

/// The number of tasks a product of op(A) [m, k] · op(B) [k, n] is split into: one per core of
/// rayon's pool as long as each gets at least [`PARALLEL_MIN_WORK`] multiply-adds and
/// 64 rows (so that each task's packed panels are worth their packing).
pub fn tasks_for(m: usize, k: usize, n: usize) -> usize {
    let work = m.saturating_mul(k).saturating_mul(n);
    rayon::current_num_threads().min(work / PARALLEL_MIN_WORK).min(m / MIN_ROWS_PER_TASK).max(1)
}

/// One operand as the product uses it: its data pointer and the strides of its rows and columns.
#[derive(Clone, Copy)]
struct Strided<P> {
    ptr: P,
    rs: isize,
    cs: isize,
}

/// A kernel of matrixmultiply: (m, k, n, α, A, rsa, csa, B, rsb, csb, β, C, rsc, csc).
type Kernel<T> =
    unsafe fn(usize, usize, usize, T, *const T, isize, isize, *const T, isize, isize, T, *mut T, isize, isize);

/// C ← α·op(A)·op(B) + β·C with op(A) [m, k] and op(B) [k, n], ready to be run by row blocks.
struct Product<T> {
    kernel: Kernel<T>,
    k: usize,
    n: usize,
    alpha: T,
    beta: T,
    a: Strided<*const T>,
    b: Strided<*const T>,
    c: Strided<*mut T>,
}

// SAFETY: the tasks of one product read A and B, which no one writes while it runs, and write
// disjoint rows of C (see `Product::rows`); the pointers stay valid for the whole product.
unsafe impl<T: Sync> Sync for Product<T> {}

impl<T: Copy + Sync> Product<T> {
    /// Rows [start, start + len) of C, in `tasks` row blocks run by rayon's pool (one runs on
    /// the calling thread).
    ///
    /// # Safety
    /// The pointers, dimensions and strides must describe live arrays with at least
    /// start + len rows in op(A) and C; those rows of C must be written by no one else during
    /// the call, and A and B by no one.
    unsafe fn rows(&self, tasks: usize, start: usize, len: usize) {
        if tasks <= 1 {
            let (a, c) = (self.a, self.c);
            // SAFETY: rows [start, start + len) lie inside op(A) and C (the caller's promise),
            // so offsetting by whole rows stays inside their allocations.
            unsafe {
                (self.kernel)(
                    len,
                    self.k,
                    self.n,
                    self.alpha,
                    a.ptr.offset(start as isize * a.rs),
                    a.rs,
                    a.cs,
                    self.b.ptr,
                    self.b.rs,
                    self.b.cs,
                    self.beta,
                    c.ptr.offset(start as isize * c.rs),
                    c.rs,
                    c.cs,
                );
            }
            return;
        }
        let left_tasks = tasks / 2;
        let left = len * left_tasks / tasks;
        rayon::join(
            // SAFETY: the two halves write disjoint row ranges of C; the rest is the caller's
            // promise.
            || unsafe { self.rows(left_tasks, start, left) },
            || unsafe { self.rows(tasks - left_tasks, start + left, len - left) },
        );
    }
}

/// The product's operands as raw parts after checking their shapes, with m (op(A)'s rows); None
/// when C is empty.
#[allow(clippy::too_many_arguments)]
fn prepare<T>(
    kernel: Kernel<T>,
    alpha: T,
    a: ArrayView2<'_, T>,
    op_a: Op,
    b: ArrayView2<'_, T>,
    op_b: Op,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) -> Result<Option<(usize, Product<T>)>, ShapeError> {
    let (m, k, rsa, csa) = layout(&a, op_a);
    let (k2, n, rsb, csb) = layout(&b, op_b);
    check(m, k, k2, n, c.dim())?;
    if m == 0 || n == 0 {
        return Ok(None);
    }
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    Ok(Some((
        m,
        Product {
            kernel,
            k,
            n,
            alpha,
            beta,
            a: Strided { ptr: a.as_ptr(), rs: rsa, cs: csa },
            b: Strided { ptr: b.as_ptr(), rs: rsb, cs: csb },
            c: Strided { ptr: c.as_mut_ptr(), rs: rsc, cs: csc },
        },
    )))
}

macro_rules! gemm_fn {
    ($name:ident, $tasks_name:ident, $t:ty, $kernel:path) => {
        /// C ← α·op(A)·op(B) + β·C: on the calling thread by the small-product kernel where it
        /// applies, else by matrixmultiply's, on the calling thread or split over rayon's pool
        /// by [`tasks_for`].
        pub fn $name(
            alpha: $t,
            a: ArrayView2<'_, $t>,
            op_a: Op,
            b: ArrayView2<'_, $t>,
            op_b: Op,
            beta: $t,
            c: ArrayViewMut2<'_, $t>,
        ) -> Result<(), ShapeError> {
            let Some((m, product)) = prepare::<$t>($kernel, alpha, a, op_a, b, op_b, beta, c)? else {
                return Ok(());
            };
            let tasks = tasks_for(m, product.k, product.n);
            // SAFETY: the pointers come from live views whose dimensions and strides were
            // checked against each other by `prepare`; C is borrowed mutably for the call and
            // A, B immutably; the small kernel runs only where `applies` holds, and the split
            // gives each task its own rows of C.
            unsafe {
                if tasks == 1 && small::applies(&product) {
                    small::product(&product, m);
                } else {
                    product.rows(tasks, 0, m);
                }
            }
            Ok(())
        }

        /// The same product by matrixmultiply's kernel split into a given number of row blocks
        /// (one runs it on the calling thread): for benchmarks that measure where splitting pays.
        #[allow(clippy::too_many_arguments)]
        pub fn $tasks_name(
            tasks: usize,
            alpha: $t,
            a: ArrayView2<'_, $t>,
            op_a: Op,
            b: ArrayView2<'_, $t>,
            op_b: Op,
            beta: $t,
            c: ArrayViewMut2<'_, $t>,
        ) -> Result<(), ShapeError> {
            if let Some((m, product)) = prepare::<$t>($kernel, alpha, a, op_a, b, op_b, beta, c)? {
                // SAFETY: as in the automatic choice above.
                unsafe { product.rows(tasks.clamp(1, m), 0, m) };
            }
            Ok(())
        }
    };
}

gemm_fn!(dgemm, dgemm_tasks, f64, matrixmultiply::dgemm);
gemm_fn!(sgemm, sgemm_tasks, f32, matrixmultiply::sgemm);

/// The naive triple loop, the reference twin of the kernels.
pub fn reference(a: ArrayView2<'_, f64>, op_a: Op, b: ArrayView2<'_, f64>, op_b: Op) -> ndarray::Array2<f64> {
    let at = |i: usize, j: usize| if op_a == Op::N { a[[i, j]] } else { a[[j, i]] };
    let bt = |i: usize, j: usize| if op_b == Op::N { b[[i, j]] } else { b[[j, i]] };
    let (m, k, _, _) = layout(&a, op_a);
    let (_, n, _, _) = layout(&b, op_b);
    ndarray::Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|l| at(i, l) * bt(l, j)).sum())
}
