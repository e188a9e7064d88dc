//! Matrix products for the network's layers, on ndarray views of any strides:
//! C ← α·op(A)·op(B) + β·C, with op the identity or the transpose. The backward pass of a dense layer needs
//! Aᵀ·B (weight gradients) and A·Bᵀ (input gradients); transposing is a change of strides,
//! so every variant is one call of matrixmultiply's kernel, which picks AVX2/FMA or AVX-512
//! at run time and splits large products over the cores (its `threading` feature).

use ndarray::{ArrayView2, ArrayViewMut2};

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

macro_rules! gemm_fn {
    ($name:ident, $t:ty, $kernel:path) => {
        /// C ← α·op(A)·op(B) + β·C.
        pub fn $name(
            alpha: $t,
            a: ArrayView2<'_, $t>,
            op_a: Op,
            b: ArrayView2<'_, $t>,
            op_b: Op,
            beta: $t,
            mut c: ArrayViewMut2<'_, $t>,
        ) -> Result<(), ShapeError> {
            let (m, k, rsa, csa) = layout(&a, op_a);
            let (k2, n, rsb, csb) = layout(&b, op_b);
            check(m, k, k2, n, c.dim())?;
            let (rsc, csc) = (c.strides()[0], c.strides()[1]);
            if m == 0 || n == 0 {
                return Ok(());
            }
            // SAFETY: the pointers come from live views whose dimensions and strides were
            // checked against each other above, and C is borrowed mutably for the call.
            unsafe {
                $kernel(m, k, n, alpha, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), rsc, csc);
            }
            Ok(())
        }
    };
}

gemm_fn!(dgemm, f64, matrixmultiply::dgemm);
gemm_fn!(sgemm, f32, matrixmultiply::sgemm);

/// The naive triple loop, the reference twin of the kernels.
pub fn reference(a: ArrayView2<'_, f64>, op_a: Op, b: ArrayView2<'_, f64>, op_b: Op) -> ndarray::Array2<f64> {
    let at = |i: usize, j: usize| if op_a == Op::N { a[[i, j]] } else { a[[j, i]] };
    let bt = |i: usize, j: usize| if op_b == Op::N { b[[i, j]] } else { b[[j, i]] };
    let (m, k, _, _) = layout(&a, op_a);
    let (_, n, _, _) = layout(&b, op_b);
    ndarray::Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|l| at(i, l) * bt(l, j)).sum())
}
