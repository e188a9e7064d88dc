#![allow(clippy::unwrap_used)]
//! The histogram kernel against its scalar reference twin at awkward sizes (0, 1, 7, 63, 65,
//! 1023 and several chunks), with reflection on and off, on every instruction-set path; the
//! edge and bandwidth derivatives against central differences of the reference counts;
//! bins far from every event against sums of libm's upper tails; and thread-count independence.

use neos_runtime::hist::{backward, backward_on, forward, forward_on, reference};
use neos_runtime::math::Isa;

/// Deterministic values spread over and beyond [0, 1].
fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919 % 1000) as f64) / 800.0 - 0.1).collect()
}

const EDGES: [f64; 5] = [0.0, 0.2, 0.45, 0.7, 1.0];
const ADJOINT: [f64; 4] = [0.7, -1.3, 2.1, 0.4];

fn close(label: &str, a: f64, b: f64, rtol: f64, atol: f64) {
    assert!((a - b).abs() <= atol + rtol * a.abs().max(b.abs()), "{label}: {a:e} vs {b:e}");
}

fn check(n: usize, h: f64, reflect: bool) {
    let t = values(n);
    let label = format!("n = {n}, h = {h}, reflect = {reflect}");
    let counts = forward(&t, &EDGES, h, reflect);
    let expected = reference::forward(&t, &EDGES, h, reflect);
    // The reference's own rounding near Φ = 1 is about 1e-16 per event, hence the floor.
    for (j, (c, e)) in counts.iter().zip(&expected).enumerate() {
        close(&format!("{label}: count {j}"), *c, *e, 1e-13, 1e-15 * (n as f64 + 1.0));
    }
    let g = backward(&t, &EDGES, h, reflect, &ADJOINT).unwrap();
    let d_values = reference::d_values(&t, &EDGES, h, reflect, &ADJOINT);
    for (i, (a, b)) in g.values.iter().zip(&d_values).enumerate() {
        close(&format!("{label}: d value {i}"), *a, *b, 1e-13, 1e-13);
    }
    // Every instruction-set path computes the same operations, so the same bits.
    for isa in Isa::available() {
        assert_eq!(forward_on(isa, &t, &EDGES, h, reflect).unwrap(), counts, "{label}: counts on {isa:?}");
        assert_eq!(backward_on(isa, &t, &EDGES, h, reflect, &ADJOINT).unwrap(), g, "{label}: gradients on {isa:?}");
    }
    // Edges and bandwidth by central differences of the reference counts.
    let loss = |edges: &[f64], h: f64| -> f64 {
        reference::forward(&t, edges, h, reflect).iter().zip(ADJOINT).map(|(c, a)| c * a).sum()
    };
    let eps = 1e-6;
    for k in 0..EDGES.len() {
        let (mut up, mut down) = (EDGES, EDGES);
        up[k] += eps;
        down[k] -= eps;
        let numeric = (loss(&up, h) - loss(&down, h)) / (2.0 * eps);
        close(&format!("{label}: d edge {k}"), g.edges[k], numeric, 1e-6, 1e-7 * (n as f64 + 1.0));
    }
    let numeric = (loss(&EDGES, h + eps) - loss(&EDGES, h - eps)) / (2.0 * eps);
    close(&format!("{label}: d bandwidth"), g.bandwidth, numeric, 1e-6, 1e-7 * (n as f64 + 1.0));
}

#[test]
fn kernel_matches_its_reference_at_awkward_sizes() {
    for n in [0, 1, 7, 63, 65, 1023, 2049] {
        for reflect in [false, true] {
            check(n, 0.09, reflect);
        }
    }
    check(65, 0.5, true);
    check(65, 1e-3, false);
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let t = values(5000);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| (forward(&t, &EDGES, 0.09, false), backward(&t, &EDGES, 0.09, false, &ADJOINT).unwrap()))
    };
    assert_eq!(run(1), run(3));
}

/// Φ(−x) from libm's erfc, accurate in relative terms for x > 0.
fn upper_tail(x: f64) -> f64 {
    0.5 * libm::erfc(x * std::f64::consts::FRAC_1_SQRT_2)
}

#[test]
fn bins_far_from_every_event_keep_their_relative_precision() {
    // Events 2 to 3 below the first edge: each bin holds Σᵢ [Φ(−z_j) − Φ(−z_{j+1})] of upper
    // tails around 1e-28 to 1e-100, which differences of Φ values near 1 would round to 0.
    let t: Vec<f64> = (0..300).map(|i| -2.0 - i as f64 / 300.0).collect();
    let h = 0.09;
    let counts = forward(&t, &EDGES, h, false);
    for (j, c) in counts.iter().enumerate() {
        let expected: f64 =
            t.iter().map(|&t| upper_tail((EDGES[j] - t) / h) - upper_tail((EDGES[j + 1] - t) / h)).sum();
        assert!(expected > 0.0, "bin {j}: expected a positive count");
        close(&format!("far bin {j}"), *c, expected, 1e-12, 0.0);
    }
    // Mirrored above the last edge, where the reference is accurate too.
    let t: Vec<f64> = t.iter().map(|&t| 1.0 - t).collect();
    let counts = forward(&t, &EDGES, h, false);
    for (j, (c, e)) in counts.iter().zip(reference::forward(&t, &EDGES, h, false)).enumerate() {
        assert!(e > 0.0, "bin {j}: expected a positive count");
        close(&format!("far bin {j} above"), *c, e, 1e-12, 0.0);
    }
}

#[test]
fn a_path_this_cpu_lacks_is_an_error() {
    if !Isa::Avx2Fma.is_available() {
        assert!(forward_on(Isa::Avx2Fma, &[0.5], &EDGES, 0.1, false).is_err());
        assert!(backward_on(Isa::Avx2Fma, &[0.5], &EDGES, 0.1, false, &ADJOINT).is_err());
    }
    assert!(forward_on(Isa::Portable, &[0.5], &EDGES, 0.1, false).is_ok());
}

#[test]
fn an_adjoint_of_the_wrong_length_is_an_error() {
    let e = backward(&[0.5], &EDGES, 0.1, false, &ADJOINT[1..]).unwrap_err();
    assert!(e.message.contains("one adjoint value per bin"), "{e}");
}
