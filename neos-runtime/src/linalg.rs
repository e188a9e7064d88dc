//! Small dense linear algebra for fits: Cholesky for symmetric positive definite systems (the
//! Hessian of a negative log-likelihood at its minimum) and LU with partial pivoting for the
//! rest. Matrices are row-major slices of n·n values.

use std::fmt;

/// Why a factorisation failed.
#[derive(Clone, Debug, PartialEq)]
pub enum LinalgError {
    /// The matrix is not positive definite: pivot `index` was `pivot` (≤ 0 or NaN).
    NotPositiveDefinite { index: usize, pivot: f64 },
    /// The matrix is singular to working precision at column `index`.
    Singular { index: usize },
    /// The slices do not have the sizes of an n×n system.
    Shape { expected: usize, found: usize },
}

impl fmt::Display for LinalgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinalgError::NotPositiveDefinite { index, pivot } => {
                write!(f, "expected a positive definite matrix, found pivot {pivot:e} at row {index}")
            }
            LinalgError::Singular { index } => {
                write!(f, "expected an invertible matrix, found it singular at column {index}")
            }
            LinalgError::Shape { expected, found } => write!(f, "expected {expected} values, found {found}"),
        }
    }
}

impl std::error::Error for LinalgError {}

/// The lower-triangular Cholesky factor L of a symmetric positive definite matrix (A = L·Lᵀ),
/// reading only A's lower triangle.
pub fn cholesky(a: &[f64], n: usize) -> Result<Vec<f64>, LinalgError> {
    let mut l = vec![0.0; n * n];
    cholesky_into(a, n, &mut l)?;
    Ok(l)
}

/// [`cholesky`] into a given buffer of n² values, for callers that factorise in a loop.
pub fn cholesky_into(a: &[f64], n: usize, l: &mut [f64]) -> Result<(), LinalgError> {
    if a.len() != n * n {
        return Err(LinalgError::Shape { expected: n * n, found: a.len() });
    }
    if l.len() != n * n {
        return Err(LinalgError::Shape { expected: n * n, found: l.len() });
    }
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(sum > 0.0) || !sum.is_finite() {
                    return Err(LinalgError::NotPositiveDefinite { index: i, pivot: sum });
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
        for j in i + 1..n {
            l[i * n + j] = 0.0;
        }
    }
    Ok(())
}

/// Solves L·Lᵀ·x = b given the Cholesky factor L.
pub fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    cholesky_solve_in_place(l, n, &mut y);
    y
}

/// [`cholesky_solve`] overwriting `y`, which holds b on entry and x on return.
pub fn cholesky_solve_in_place(l: &[f64], n: usize, y: &mut [f64]) {
    for i in 0..n {
        for k in 0..i {
            y[i] -= l[i * n + k] * y[k];
        }
        y[i] /= l[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= l[k * n + i] * y[k];
        }
        y[i] /= l[i * n + i];
    }
}

/// An LU factorisation with partial pivoting (P·A = L·U, L unit lower, stored together).
#[derive(Clone, Debug)]
pub struct Lu {
    n: usize,
    lu: Vec<f64>,
    pivots: Vec<usize>,
}

impl Lu {
    pub fn new(a: &[f64], n: usize) -> Result<Self, LinalgError> {
        if a.len() != n * n {
            return Err(LinalgError::Shape { expected: n * n, found: a.len() });
        }
        let mut lu = a.to_vec();
        let mut pivots: Vec<usize> = (0..n).collect();
        let scale = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for col in 0..n {
            let (best, value) =
                (col..n)
                    .map(|r| (r, lu[r * n + col].abs()))
                    .fold((col, -1.0), |acc, x| if x.1 > acc.1 { x } else { acc });
            if !(value > scale * 1e-300) || !value.is_finite() {
                return Err(LinalgError::Singular { index: col });
            }
            if best != col {
                for k in 0..n {
                    lu.swap(best * n + k, col * n + k);
                }
                pivots.swap(best, col);
            }
            for r in col + 1..n {
                let factor = lu[r * n + col] / lu[col * n + col];
                lu[r * n + col] = factor;
                for k in col + 1..n {
                    lu[r * n + k] -= factor * lu[col * n + k];
                }
            }
        }
        Ok(Lu { n, lu, pivots })
    }

    /// Solves A·x = b.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut y: Vec<f64> = self.pivots.iter().map(|&p| b[p]).collect();
        for i in 0..n {
            for k in 0..i {
                y[i] -= self.lu[i * n + k] * y[k];
            }
        }
        for i in (0..n).rev() {
            for k in i + 1..n {
                y[i] -= self.lu[i * n + k] * y[k];
            }
            y[i] /= self.lu[i * n + i];
        }
        y
    }

    /// Solves Aᵀ·x = b.
    pub fn solve_transposed(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        // Aᵀ = Uᵀ Lᵀ P, so solve Uᵀ z = b, then Lᵀ y = z, then x = Pᵀ y.
        let mut z = b.to_vec();
        for i in 0..n {
            for k in 0..i {
                z[i] -= self.lu[k * n + i] * z[k];
            }
            z[i] /= self.lu[i * n + i];
        }
        for i in (0..n).rev() {
            for k in i + 1..n {
                z[i] -= self.lu[k * n + i] * z[k];
            }
        }
        let mut x = vec![0.0; n];
        for (i, &p) in self.pivots.iter().enumerate() {
            x[p] = z[i];
        }
        x
    }
}

/// Solves A·x = b, by Cholesky when A is symmetric positive definite and by LU otherwise.
pub fn solve(a: &[f64], n: usize, b: &[f64]) -> Result<Vec<f64>, LinalgError> {
    if b.len() != n {
        return Err(LinalgError::Shape { expected: n, found: b.len() });
    }
    let symmetric = (0..n).all(|i| (0..i).all(|j| a[i * n + j] == a[j * n + i]));
    if symmetric {
        if let Ok(l) = cholesky(a, n) {
            return Ok(cholesky_solve(&l, n, b));
        }
    }
    Ok(Lu::new(a, n)?.solve(b))
}

/// The inverse of A (row-major), by LU.
pub fn inverse(a: &[f64], n: usize) -> Result<Vec<f64>, LinalgError> {
    let lu = Lu::new(a, n)?;
    let mut inv = vec![0.0; n * n];
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        for (i, v) in lu.solve(&e).into_iter().enumerate() {
            inv[i * n + j] = v;
        }
    }
    Ok(inv)
}
