//! The events a run trains and evaluates on: checks, a seeded train/test split, per-epoch
//! shuffled batches, and a fingerprint that ties a checkpoint to its data.
//!
//! Every random choice comes from a ChaCha8 stream keyed by (seed, purpose, epoch) with the
//! sample's index as the stream number, so each sample is shuffled independently, and the
//! batches of any step can be rebuilt from the seed and the step alone: a resumed run sees the
//! batches an uninterrupted one would have. Indices are drawn by Lemire's unbiased
//! multiply-and-reject method on the raw 64-bit output rather than through `rand`'s
//! distributions, whose values may change between `rand` versions; ChaCha8's output does not.
//!
//! Batches. All samples contribute `batch_size` events to every batch, so that every sample's
//! histograms are estimated from as many events at each step, whatever the sample's size. An
//! epoch is as many full batches as the sample with the fewest training events allows; the
//! events of a larger sample (and the remainder of the smallest) that do not fit are left out
//! of that epoch only, and because each epoch reshuffles, every event is used over a run. The
//! test set of each sample is its whole part of the split, whatever its size: the metrics are
//! computed on every test event.

use ndarray::{Array2, ArrayView2, Axis};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a stream's randomness is for; part of its key, so that the split and the epochs draw
/// from unrelated streams even for the same seed.
#[derive(Clone, Copy, Debug)]
enum Purpose {
    Split = 1,
    Epoch = 2,
}

fn stream(seed: u64, purpose: Purpose, epoch: u64, sample: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(purpose as u64).to_le_bytes());
    key[16..24].copy_from_slice(&epoch.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(sample as u64);
    rng
}

/// A uniform integer in 0..n (n ≥ 1) without modulo bias (Lemire 2019).
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(n);
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

/// A uniformly random permutation of 0..n (Fisher–Yates).
fn permutation(rng: &mut ChaCha8Rng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// Checks the datasets against the analysis's samples: one array per sample, each with the
/// declared feature count, at least one event, and only finite values.
pub fn validate_data(data: &[ArrayView2<'_, f64>], samples: &[(String, usize)]) -> Result<(), String> {
    if data.len() != samples.len() {
        let names: Vec<&str> = samples.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "expected one dataset per sample ({}: {}), found {}",
            samples.len(),
            names.join(", "),
            data.len()
        ));
    }
    for (s, (x, (name, features))) in data.iter().zip(samples).enumerate() {
        if x.ncols() != *features {
            return Err(format!("sample {s} ({name}): expected {features} features per event, found {}", x.ncols()));
        }
        if x.nrows() == 0 {
            return Err(format!("sample {s} ({name}): expected at least one event, found none"));
        }
        if let Some(((row, col), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!("sample {s} ({name}): expected finite values, found {v} at row {row}, column {col}"));
        }
    }
    Ok(())
}

/// Each sample's events, split into a part to train on and a part to test on.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Vec<Array2<f64>>,
    pub test: Vec<Array2<f64>>,
}

/// Splits each sample's events at random into a training and a test part: the first
/// ⌊fraction·n⌋ events of a seeded permutation train, the rest test. Both parts must be
/// non-empty.
pub fn train_test_split(
    data: &[ArrayView2<'_, f64>],
    names: &[String],
    fraction: f64,
    seed: u64,
) -> Result<Split, String> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(format!("expected a train fraction strictly between 0 and 1, found {fraction}"));
    }
    let mut train = Vec::with_capacity(data.len());
    let mut test = Vec::with_capacity(data.len());
    for (s, x) in data.iter().enumerate() {
        let n = x.nrows();
        let n_train = (fraction * n as f64).floor() as usize;
        if n_train == 0 || n_train == n {
            let name = names.get(s).map_or("", String::as_str);
            return Err(format!(
                "sample {s} ({name}): expected a train fraction of {fraction} of {n} events to leave events for both \
                 training and testing, found {n_train} for training and {} for testing",
                n - n_train
            ));
        }
        let order = permutation(&mut stream(seed, Purpose::Split, 0, s), n);
        train.push(x.select(Axis(0), &order[..n_train]));
        test.push(x.select(Axis(0), &order[n_train..]));
    }
    Ok(Split { train, test })
}

/// Hands out the training batches of each step, rebuilt from (seed, step) alone.
#[derive(Debug)]
pub struct Batcher {
    train: Vec<Array2<f64>>,
    batch_size: usize,
    seed: u64,
    batches_per_epoch: usize,
    /// The epoch whose permutations `order` holds.
    epoch: Option<u64>,
    order: Vec<Vec<usize>>,
    buffers: Vec<Array2<f64>>,
}

impl Batcher {
    /// Batches of `batch_size` events per sample from the training parts; an error when a
    /// sample has fewer training events than one batch.
    pub fn new(train: Vec<Array2<f64>>, names: &[String], batch_size: usize, seed: u64) -> Result<Self, String> {
        if batch_size == 0 {
            return Err("expected a batch size of at least one event, found 0".into());
        }
        let mut batches_per_epoch = usize::MAX;
        for (s, x) in train.iter().enumerate() {
            if x.nrows() < batch_size {
                let name = names.get(s).map_or("", String::as_str);
                return Err(format!(
                    "sample {s} ({name}): expected at least the batch size of {batch_size} training events, found {}",
                    x.nrows()
                ));
            }
            batches_per_epoch = batches_per_epoch.min(x.nrows() / batch_size);
        }
        if train.is_empty() {
            return Err("expected at least one sample, found none".into());
        }
        let buffers = train.iter().map(|x| Array2::zeros((batch_size, x.ncols()))).collect();
        Ok(Batcher { train, batch_size, seed, batches_per_epoch, epoch: None, order: Vec::new(), buffers })
    }

    /// How many batches make one pass over the smallest sample.
    pub fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    /// The batch of step `step` (counting from 0): one `[batch_size, features]` array per sample.
    pub fn batch(&mut self, step: usize) -> &[Array2<f64>] {
        let epoch = (step / self.batches_per_epoch) as u64;
        let k = step % self.batches_per_epoch;
        if self.epoch != Some(epoch) {
            self.order = self
                .train
                .iter()
                .enumerate()
                .map(|(s, x)| permutation(&mut stream(self.seed, Purpose::Epoch, epoch, s), x.nrows()))
                .collect();
            self.epoch = Some(epoch);
        }
        let rows = k * self.batch_size..(k + 1) * self.batch_size;
        for ((buffer, x), order) in self.buffers.iter_mut().zip(&self.train).zip(&self.order) {
            let features = x.ncols();
            match (buffer.as_slice_mut(), x.as_slice()) {
                // Row by row as slices: a batch has a few features per event, where ndarray's
                // general `assign` costs more per row than the copy itself (4 % of a 32-wide
                // blobs step).
                (Some(dst), Some(src)) if features > 0 => {
                    for (dst, &i) in dst.chunks_exact_mut(features).zip(&order[rows.clone()]) {
                        dst.copy_from_slice(&src[i * features..(i + 1) * features]);
                    }
                }
                _ => {
                    for (mut dst, &src) in buffer.rows_mut().into_iter().zip(&order[rows.clone()]) {
                        dst.assign(&x.row(src));
                    }
                }
            }
        }
        &self.buffers
    }
}

/// The sizes and a hash of the datasets a run was made with, so that a checkpoint is only
/// resumed on the same data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// (events, features) of each sample.
    pub shapes: Vec<(usize, usize)>,
    /// FNV-1a (64 bit) over the shapes and every value's bits in row-major order, in hex. A
    /// hash of our own rather than std's, whose output may change between Rust versions.
    pub hash: String,
}

impl DataFingerprint {
    pub fn of(data: &[ArrayView2<'_, f64>]) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        let mut eat = |word: u64| {
            for byte in word.to_le_bytes() {
                h = (h ^ u64::from(byte)).wrapping_mul(PRIME);
            }
        };
        eat(data.len() as u64);
        for x in data {
            eat(x.nrows() as u64);
            eat(x.ncols() as u64);
            for v in x.iter() {
                eat(v.to_bits());
            }
        }
        DataFingerprint { shapes: data.iter().map(|x| (x.nrows(), x.ncols())).collect(), hash: format!("{h:016x}") }
    }

    /// Why `self` (the data given now) is not `other` (the data of a checkpoint), if it is not.
    pub fn mismatch(&self, other: &DataFingerprint, names: &[String]) -> Option<String> {
        if self.shapes.len() != other.shapes.len() {
            return Some(format!(
                "expected data for {} samples as in the checkpoint, found {}",
                other.shapes.len(),
                self.shapes.len()
            ));
        }
        for (s, (now, then)) in self.shapes.iter().zip(&other.shapes).enumerate() {
            if now != then {
                let name = names.get(s).map_or("", String::as_str);
                return Some(format!(
                    "sample {s} ({name}): expected {} events of {} features as in the checkpoint, found {} of {}",
                    then.0, then.1, now.0, now.1
                ));
            }
        }
        if self.hash != other.hash {
            return Some(format!(
                "expected the data the checkpoint was made with (hash {}), found data of the same sizes with hash {}",
                other.hash, self.hash
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index draw is uniform: every value of 0..n turns up about equally often.
    #[test]
    fn below_is_uniform() {
        let mut rng = stream(7, Purpose::Split, 0, 0);
        let n = 6u64;
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[below(&mut rng, n) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn permutations_are_permutations() {
        let mut rng = stream(1, Purpose::Epoch, 3, 2);
        for n in [0, 1, 2, 17] {
            let mut p = permutation(&mut rng, n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
    }
}
