//! The GEMM wrappers against the naive reference at awkward sizes, with every transpose
//! variant, strided (non-contiguous) views, and α, β ≠ 1, 0.

use ndarray::{s, Array2};
use neos_runtime::gemm::{dgemm, dgemm_tasks, reference, sgemm, sgemm_tasks, tasks_for, Op};

fn matrix(r: usize, c: usize, seed: usize) -> Array2<f64> {
    Array2::from_shape_fn((r, c), |(i, j)| (((i * 31 + j * 17 + seed * 7) % 23) as f64 - 11.0) / 7.0)
}

/// A matrix stored with every other row and column in a larger one, so its view is strided.
fn strided(r: usize, c: usize, seed: usize) -> Array2<f64> {
    matrix(2 * r + 1, 2 * c + 1, seed)
}

#[test]
fn every_variant_at_awkward_sizes() {
    let sizes = [0, 1, 7, 63, 65];
    for &m in &sizes {
        for &k in &[1, 7, 65] {
            for &n in &sizes {
                for (op_a, op_b) in [(Op::N, Op::N), (Op::T, Op::N), (Op::N, Op::T), (Op::T, Op::T)] {
                    let a = if op_a == Op::N { matrix(m, k, 1) } else { matrix(k, m, 1) };
                    let b = if op_b == Op::N { matrix(k, n, 2) } else { matrix(n, k, 2) };
                    let c0 = matrix(m, n, 3);
                    let mut c = c0.clone();
                    dgemm(0.5, a.view(), op_a, b.view(), op_b, 2.0, c.view_mut()).unwrap();
                    let expected = reference(a.view(), op_a, b.view(), op_b) * 0.5 + &c0 * 2.0;
                    for (x, y) in c.iter().zip(expected.iter()) {
                        assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{m}x{k}x{n} {op_a:?}{op_b:?}: {x} vs {y}");
                    }
                }
            }
        }
    }
}

#[test]
fn strided_views_and_single_precision() {
    let (m, k, n) = (33, 17, 9);
    let a_big = strided(m, k, 4);
    let b_big = strided(k, n, 5);
    let (a, b) = (a_big.slice(s![..;2, ..;2]), b_big.slice(s![..;2, ..;2]));
    assert_eq!(a.dim(), (m + 1, k + 1));
    let mut c_big = Array2::<f64>::zeros((2 * (m + 1), 2 * (n + 1)));
    let c = c_big.slice_mut(s![..;2, ..;2]);
    dgemm(1.0, a, Op::N, b, Op::N, 0.0, c).unwrap();
    let expected = reference(a, Op::N, b, Op::N);
    for (x, y) in c_big.slice(s![..;2, ..;2]).iter().zip(expected.iter()) {
        assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()));
    }
    let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
    let mut c32 = Array2::<f32>::zeros((m + 1, n + 1));
    sgemm(1.0, a32.view(), Op::N, b32.view(), Op::N, 0.0, c32.view_mut()).unwrap();
    for (x, y) in c32.iter().zip(expected.iter()) {
        assert!((*x as f64 - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
    }
}

/// A product split by rows over rayon's pool gives the same bits as on one thread, for every
/// transpose variant, strided C, α, β ≠ 1, 0 and more tasks than rows; the threshold keeps
/// small products on the calling thread and splits large ones.
#[test]
fn split_products_give_the_same_bits_as_one_task() {
    for (op_a, op_b) in [(Op::N, Op::N), (Op::T, Op::N), (Op::N, Op::T), (Op::T, Op::T)] {
        for &(m, k, n) in &[(1, 3, 2), (5, 9, 4), (130, 33, 17), (257, 65, 3)] {
            let a = if op_a == Op::N { matrix(m, k, 1) } else { matrix(k, m, 1) };
            let b = if op_b == Op::N { matrix(k, n, 2) } else { matrix(n, k, 2) };
            let c0 = matrix(2 * m - 1, 2 * n - 1, 3);
            let mut one = c0.clone();
            dgemm_tasks(1, 0.5, a.view(), op_a, b.view(), op_b, 2.0, one.slice_mut(s![..;2, ..;2])).unwrap();
            let expected = reference(a.view(), op_a, b.view(), op_b) * 0.5 + &c0.slice(s![..;2, ..;2]) * 2.0;
            for (x, y) in one.slice(s![..;2, ..;2]).iter().zip(expected.iter()) {
                assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{m}x{k}x{n} {op_a:?}{op_b:?}: {x} vs {y}");
            }
            for tasks in [2, 3, 4, 2 * m + 5] {
                let mut split = c0.clone();
                dgemm_tasks(tasks, 0.5, a.view(), op_a, b.view(), op_b, 2.0, split.slice_mut(s![..;2, ..;2])).unwrap();
                assert_eq!(split, one, "{m}x{k}x{n} {op_a:?}{op_b:?} in {tasks} tasks");
            }
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let c32 = c0.slice(s![..;2, ..;2]).mapv(|v| v as f32);
            let (mut one32, mut split32) = (c32.clone(), c32);
            sgemm_tasks(1, 1.0, a32.view(), op_a, b32.view(), op_b, 1.0, one32.view_mut()).unwrap();
            sgemm_tasks(3, 1.0, a32.view(), op_a, b32.view(), op_b, 1.0, split32.view_mut()).unwrap();
            assert_eq!(split32, one32, "f32 {m}x{k}x{n} {op_a:?}{op_b:?}");
        }
    }
    assert_eq!(tasks_for(2000, 32, 32), 1, "the 32-wide layer runs on the calling thread");
    assert_eq!(
        tasks_for(2000, 1024, 1024),
        rayon::current_num_threads().min(2000 / 64),
        "the 1024-wide layer is split"
    );
}

/// The small networks' shapes (whole tiles of 16 or 32 columns, or one column, small enough for
/// one thread) go through the kernel without packing: every transpose variant, odd row counts,
/// contiguous and strided A, α, β ≠ 1, 0, and β = 0 overwriting NaN in C, against the naive
/// reference.
#[test]
fn small_products_without_packing() {
    for (op_a, op_b) in [(Op::N, Op::N), (Op::T, Op::N), (Op::N, Op::T), (Op::T, Op::T)] {
        let shapes = [
            (1, 1, 32),
            (7, 2, 32),
            (33, 32, 32),
            (65, 5, 64),
            (2, 300, 32),
            (301, 32, 96),
            (33, 32, 1),
            (32, 2000, 1),
            (5, 17, 1),
        ];
        for (&(m, k, n), step) in shapes.iter().flat_map(|s| [(s, 1), (s, 2)]) {
            let a_big = if op_a == Op::N { strided(m, k, 1) } else { strided(k, m, 1) };
            let a = a_big.slice(s![..;step, ..;step]);
            let a = if op_a == Op::N { a.slice_move(s![..m, ..k]) } else { a.slice_move(s![..k, ..m]) };
            let b = if op_b == Op::N { matrix(k, n, 2) } else { matrix(n, k, 2) };
            let expected = reference(a, op_a, b.view(), op_b);
            let c0 = matrix(m, n, 3);
            let mut c = c0.clone();
            dgemm(0.5, a, op_a, b.view(), op_b, 2.0, c.view_mut()).unwrap();
            let mut overwritten = Array2::from_elem((m, n), f64::NAN);
            dgemm(1.0, a, op_a, b.view(), op_b, 0.0, overwritten.view_mut()).unwrap();
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let mut c32 = Array2::<f32>::from_elem((m, n), f32::NAN);
            sgemm(1.0, a32.view(), op_a, b32.view(), op_b, 0.0, c32.view_mut()).unwrap();
            for (idx, y) in expected.indexed_iter() {
                let tol = 1e-12 * (1.0 + y.abs()) * k as f64;
                let with_c = 0.5 * y + 2.0 * c0[idx];
                assert!(
                    (c[idx] - with_c).abs() <= tol,
                    "{m}x{k}x{n} {op_a:?}{op_b:?} at {idx:?}: {} vs {with_c}",
                    c[idx]
                );
                assert!((overwritten[idx] - y).abs() <= tol, "{m}x{k}x{n} {op_a:?}{op_b:?}, β = 0, at {idx:?}");
                let tol32 = 1e-5 * (1.0 + y.abs()) * k as f64;
                assert!(
                    (c32[idx] as f64 - y).abs() <= tol32,
                    "f32 {m}x{k}x{n} {op_a:?}{op_b:?} at {idx:?}: {} vs {y}",
                    c32[idx]
                );
            }
        }
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let (a, b) = (matrix(3, 4, 0), matrix(5, 2, 0));
    let mut c = Array2::<f64>::zeros((3, 2));
    let err = dgemm(1.0, a.view(), Op::N, b.view(), Op::N, 0.0, c.view_mut()).unwrap_err();
    assert!(err.to_string().contains("found [3, 4] · [5, 2]"), "{err}");
}
