//! Parameter initialisation from a seed, as jax's stax initialises a network: weights by
//! `glorot_normal` and biases by `normal(1e-2)`.
//!
//! Each parameter leaf draws from its own ChaCha8 stream, keyed by the seed and the leaf's
//! position, so the same seed gives bit-identical parameters, and changing one leaf's rule or
//! size leaves the others as they were. The numbers are not jax's (its PRNG is threefry); the
//! distributions are.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How one parameter leaf starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init<'a> {
    /// `len` copies of `value`.
    Constant { value: f64, len: usize },
    /// These values.
    Values(&'a [f64]),
    /// `len` draws from N(0, std²) (stax's bias init is `normal(1e-2)`).
    Normal { std: f64, len: usize },
    /// A `[fan_in, fan_out]` weight matrix by jax's `glorot_normal`, that is
    /// `variance_scaling(1, "fan_avg", "truncated_normal")`: a standard normal truncated to
    /// [−2, 2], times σ = √(2 / (fan_in + fan_out)) / 0.87962566103423978, the constant being
    /// the standard deviation of that truncated normal, so the weights' variance is
    /// 2 / (fan_in + fan_out).
    GlorotNormal { fan_in: usize, fan_out: usize },
}

/// The standard deviation of a standard normal truncated to [−2, 2] (jax's constant).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

impl Init<'_> {
    /// The number of values the leaf holds.
    pub fn len(&self) -> usize {
        match *self {
            Init::Constant { len, .. } | Init::Normal { len, .. } => len,
            Init::Values(v) => v.len(),
            Init::GlorotNormal { fan_in, fan_out } => fan_in * fan_out,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The flat parameter vector: each leaf's values, in order, drawn from the seed.
pub fn init(leaves: &[Init<'_>], seed: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(leaves.iter().map(Init::len).sum());
    for (k, leaf) in leaves.iter().enumerate() {
        let mut rng = stream(seed, k as u64);
        match *leaf {
            Init::Constant { value, len } => out.extend(std::iter::repeat_n(value, len)),
            Init::Values(v) => out.extend_from_slice(v),
            Init::Normal { std, len } => out.extend((0..len).map(|_| std * standard_normal(&mut rng))),
            Init::GlorotNormal { fan_in, fan_out } => {
                let fan_avg = (fan_in + fan_out) as f64 / 2.0;
                let std = (1.0 / fan_avg).sqrt() / TRUNCATED_STD;
                out.extend((0..fan_in * fan_out).map(|_| std * truncated_normal(&mut rng)));
            }
        }
    }
    out
}

/// The stream of leaf `k`: the key holds the seed and a tag that keeps these streams apart
/// from the trainer's data streams for the same seed.
fn stream(seed: u64, leaf: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[24..].copy_from_slice(b"neosinit");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(leaf);
    rng
}

/// A standard normal draw by the Box–Muller transform, with the C library's log and cos
/// (libm) so the values do not depend on the platform's math library.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // `random::<f64>()` is in [0, 1); 1 − u is in (0, 1], where the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
}

/// A standard normal draw conditioned on [−2, 2], by rejection (about 4.6% of draws are
/// rejected), which gives exactly the truncated distribution.
fn truncated_normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let z = standard_normal(rng);
        if (-2.0..=2.0).contains(&z) {
            return z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        (mean, v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n)
    }

    #[test]
    fn the_same_seed_gives_the_same_bits() {
        let leaves = [Init::GlorotNormal { fan_in: 3, fan_out: 5 }, Init::Normal { std: 0.01, len: 5 }];
        let a = init(&leaves, 7);
        let b = init(&leaves, 7);
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_ne!(a, init(&leaves, 8));
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn leaves_draw_from_their_own_streams() {
        let w = Init::GlorotNormal { fan_in: 4, fan_out: 4 };
        let alone = init(&[Init::Constant { value: 1.0, len: 3 }, w], 1);
        let resized = init(&[Init::Constant { value: 1.0, len: 9 }, w], 1);
        assert_eq!(alone[3..], resized[9..]);
        assert_eq!(alone[..3], [1.0; 3]);
        assert_eq!(init(&[Init::Values(&[0.25, 0.5])], 3), [0.25, 0.5]);
    }

    #[test]
    fn glorot_normal_has_stax_variance_and_truncation() {
        let (fan_in, fan_out) = (300, 500);
        let w = init(&[Init::GlorotNormal { fan_in, fan_out }], 11);
        let (mean, var) = moments(&w);
        let expected = 2.0 / (fan_in + fan_out) as f64;
        // 150 000 draws: the sample variance is within 1.5% of its expectation by four standard errors.
        assert!(mean.abs() < 1e-3 * expected.sqrt() * 10.0, "mean {mean}");
        assert!((var / expected - 1.0).abs() < 0.015, "variance {var}, expected {expected}");
        let bound = 2.0 * expected.sqrt() / TRUNCATED_STD;
        assert!(w.iter().all(|x| x.abs() <= bound), "a draw beyond the truncation at {bound}");
        assert!(w.iter().any(|x| x.abs() > 0.95 * bound), "no draw near the truncation at {bound}");
    }

    #[test]
    fn normal_biases_have_the_given_spread() {
        let b = init(&[Init::Normal { std: 1e-2, len: 100_000 }], 5);
        let (mean, var) = moments(&b);
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var.sqrt() / 1e-2 - 1.0).abs() < 0.01, "std {}", var.sqrt());
    }
}
