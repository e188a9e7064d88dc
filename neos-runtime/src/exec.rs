//! Support for generated code: the checks at the entry points, buffer sizing, and the kernels
//! called on flat row-major slices (matrix products, the histogram, linear solves).
//!
//! Generated code reaches this module as `::neos::__private::runtime::exec`. Everything here
//! returns a [`RunError`] that says what was expected and what was found; nothing panics on
//! bad input.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::RunError;
use crate::gemm::{dgemm, sgemm, Op};

/// The number of events shared by the event inputs: each is given as
/// (name, its length, the product of its fixed dimensions). Inputs must agree, and their lengths
/// must be whole multiples of their fixed size.
#[inline]
pub fn events(inputs: &[(&str, usize, usize)]) -> Result<usize, RunError> {
    let mut found: Option<(usize, &str)> = None;
    for &(name, len, per_event) in inputs {
        if per_event == 0 || len % per_event != 0 {
            return Err(RunError::new(
                name,
                format!("expected a row-major array of events × {per_event} values, found {len} values"),
            ));
        }
        let n = len / per_event;
        match found {
            Some((e, other)) if e != n => {
                return Err(RunError::new(name, format!("expected {e} events like `{other}`, found {n}")));
            }
            Some(_) => {}
            None => found = Some((n, name)),
        }
    }
    Ok(found.map_or(0, |(n, _)| n))
}

/// Checks that a fixed-size leaf has its declared number of values.
#[inline]
pub fn check_len(name: &str, len: usize, expected: usize) -> Result<(), RunError> {
    if len != expected {
        return Err(RunError::new(name, format!("expected {expected} values, found {len}")));
    }
    Ok(())
}

/// Checks a leaf for NaN, which would otherwise spread silently through the whole analysis.
#[inline]
pub fn check_f64(name: &str, values: &[f64]) -> Result<(), RunError> {
    match values.iter().position(|v| v.is_nan()) {
        Some(i) => Err(RunError::new(name, format!("expected numbers, found NaN at flat index {i}"))),
        None => Ok(()),
    }
}

/// [`check_f64`] for `f32` leaves.
#[inline]
pub fn check_f32(name: &str, values: &[f32]) -> Result<(), RunError> {
    match values.iter().position(|v| v.is_nan()) {
        Some(i) => Err(RunError::new(name, format!("expected numbers, found NaN at flat index {i}"))),
        None => Ok(()),
    }
}

/// Grows a buffer to at least `len` values and returns its first `len`. Buffers are sized on
/// first use and kept, so that repeated calls with the same number of events allocate nothing.
#[inline]
pub fn ensure<T: Copy + Default>(buffer: &mut Vec<T>, len: usize) -> &mut [T] {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
    &mut buffer[..len]
}

/// Sets an output vector to exactly `len` values (outputs with the events dimension shrink
/// when a smaller batch comes) and returns them.
#[inline]
pub fn exact<T: Copy + Default>(output: &mut Vec<T>, len: usize) -> &mut [T] {
    output.resize(len, T::default());
    &mut output[..]
}

macro_rules! matmul_fn {
    ($name:ident, $t:ty, $gemm:ident) => {
        /// C [m, n] = op(A) · op(B) on row-major slices, where A is stored as [a_rows, a_cols]
        /// and used transposed when `ta` (likewise B), so that a transposed operand costs no copy.
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            a: &[$t],
            a_rows: usize,
            a_cols: usize,
            ta: bool,
            b: &[$t],
            b_rows: usize,
            b_cols: usize,
            tb: bool,
            c: &mut [$t],
        ) -> Result<(), RunError> {
            let err = |e: String| RunError::new("matmul", e);
            let a = ArrayView2::from_shape((a_rows, a_cols), a).map_err(|e| err(format!("left operand: {e}")))?;
            let b = ArrayView2::from_shape((b_rows, b_cols), b).map_err(|e| err(format!("right operand: {e}")))?;
            let m = if ta { a_cols } else { a_rows };
            let n = if tb { b_rows } else { b_cols };
            let c = ArrayViewMut2::from_shape((m, n), c).map_err(|e| err(format!("result: {e}")))?;
            let op = |t: bool| if t { Op::T } else { Op::N };
            $gemm(1.0, a, op(ta), b, op(tb), 0.0, c).map_err(|e| err(e.0))
        }
    };
}

matmul_fn!(matmul_f64, f64, dgemm);
matmul_fn!(matmul_f32, f32, sgemm);

/// The kernel density histogram of `values` into `out` (one count per bin), after checking
/// what `relaxed.hist` assumes: strictly increasing edges and a positive, finite bandwidth.
pub fn hist_f64(values: &[f64], edges: &[f64], bandwidth: f64, reflect: bool, out: &mut [f64]) -> Result<(), RunError> {
    check_hist(edges, bandwidth, out.len())?;
    out.copy_from_slice(&crate::hist::forward(values, edges, bandwidth, reflect));
    Ok(())
}

/// [`hist_f64`] for `f32` operands, computed in `f64`.
pub fn hist_f32(values: &[f32], edges: &[f32], bandwidth: f32, reflect: bool, out: &mut [f32]) -> Result<(), RunError> {
    let widen = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let (values, edges) = (widen(values), widen(edges));
    check_hist(&edges, f64::from(bandwidth), out.len())?;
    for (o, c) in out.iter_mut().zip(crate::hist::forward(&values, &edges, f64::from(bandwidth), reflect)) {
        *o = c as f32;
    }
    Ok(())
}

fn check_hist(edges: &[f64], bandwidth: f64, bins: usize) -> Result<(), RunError> {
    let err = |m: String| Err(RunError::new("hist", m));
    if !(bandwidth > 0.0 && bandwidth.is_finite()) {
        return err(format!("expected a positive bandwidth, found {bandwidth}"));
    }
    if edges.len() != bins + 1 {
        return err(format!("expected {} edges for {bins} bins, found {}", bins + 1, edges.len()));
    }
    // `partial_cmp` also rejects NaN edges, which compare as neither greater nor smaller.
    if let Some(k) =
        (1..edges.len()).find(|&k| edges[k].partial_cmp(&edges[k - 1]) != Some(std::cmp::Ordering::Greater))
    {
        return err(format!(
            "expected strictly increasing bin edges, found edge {k} = {} after edge {} = {}",
            edges[k],
            k - 1,
            edges[k - 1]
        ));
    }
    Ok(())
}

/// x = A⁻¹ v for a square row-major A [n, n], written into `out`.
pub fn solve_f64(a: &[f64], v: &[f64], out: &mut [f64]) -> Result<(), RunError> {
    let n = v.len();
    if a.len() != n * n || out.len() != n {
        return Err(RunError::new(
            "solve",
            format!("expected A [{n}, {n}] and x [{n}], found {} and {} values", a.len(), out.len()),
        ));
    }
    let x = crate::linalg::solve(a, n, v).map_err(|e| RunError::new("solve", e.to_string()))?;
    out.copy_from_slice(&x);
    Ok(())
}

/// [`solve_f64`] for `f32` operands, solved in `f64`.
pub fn solve_f32(a: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), RunError> {
    let widen = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let mut x = vec![0.0; out.len()];
    solve_f64(&widen(a), &widen(v), &mut x)?;
    for (o, v) in out.iter_mut().zip(x) {
        *o = v as f32;
    }
    Ok(())
}

/// A maximum that propagates NaN, as the interpreter's `max` and `reduce_max` do.
#[inline]
pub fn nan_max_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// A minimum that propagates NaN.
#[inline]
pub fn nan_min_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// [`nan_max_f64`] for `f32`.
#[inline]
pub fn nan_max_f32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// [`nan_min_f64`] for `f32`.
#[inline]
pub fn nan_min_f32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}
