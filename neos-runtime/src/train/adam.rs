//! Adam, as `optax.adam` computes it.
//!
//! With gradient g at step t (counting from 1), decay rates b1, b2 and learning rate η:
//!
//! ```text
//! m_t = b1·m_{t−1} + (1 − b1)·g          v_t = b2·v_{t−1} + (1 − b2)·g²
//! m̂_t = m_t / (1 − b1^t)                 v̂_t = v_t / (1 − b2^t)
//! θ_t = θ_{t−1} − η · m̂_t / (√(v̂_t + eps_root) + eps)
//! ```
//!
//! This is optax's `scale_by_adam` (bias correction by dividing each moment, eps outside the
//! square root, eps_root inside) followed by `scale(−η)` and `apply_updates`. The state (both
//! moments and the step count) is plain data that serialises, so a checkpointed run resumes
//! exactly.

use serde::{Deserialize, Serialize};

use crate::error::RunError;

/// The optimiser's settings; [`Adam::new`] gives optax's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    pub learning_rate: f64,
    pub b1: f64,
    pub b2: f64,
    pub eps: f64,
    pub eps_root: f64,
}

/// What Adam carries from one step to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamState {
    /// The first moment m.
    pub m: Vec<f64>,
    /// The second moment v.
    pub v: Vec<f64>,
    /// How many updates were applied.
    pub count: u64,
}

impl AdamState {
    /// Zero moments for `n` parameters, before the first update.
    pub fn new(n: usize) -> Self {
        AdamState { m: vec![0.0; n], v: vec![0.0; n], count: 0 }
    }
}

impl Adam {
    /// optax.adam's defaults: b1 = 0.9, b2 = 0.999, eps = 1e−8, eps_root = 0.
    pub fn new(learning_rate: f64) -> Self {
        Adam { learning_rate, b1: 0.9, b2: 0.999, eps: 1e-8, eps_root: 0.0 }
    }

    /// Checks that the settings describe a working optimiser: a positive finite learning rate,
    /// decay rates in [0, 1) and non-negative epsilons.
    pub fn validate(&self) -> Result<(), RunError> {
        let err = |m: String| Err(RunError::new("adam", m));
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return err(format!("expected a positive finite learning rate, found {}", self.learning_rate));
        }
        for (name, b) in [("b1", self.b1), ("b2", self.b2)] {
            if !(0.0..1.0).contains(&b) {
                return err(format!("expected {name} in [0, 1), found {b}"));
            }
        }
        for (name, e) in [("eps", self.eps), ("eps_root", self.eps_root)] {
            if !(e >= 0.0 && e.is_finite()) {
                return err(format!("expected a non-negative finite {name}, found {e}"));
            }
        }
        Ok(())
    }

    /// Applies one update to `params` in place, given the gradient of the loss there.
    ///
    /// The lengths of `params`, `grad` and the state must agree; nothing is changed when they
    /// do not, nor when the gradient holds a non-finite value (which would poison both moments
    /// for the rest of the run).
    pub fn update(&self, state: &mut AdamState, params: &mut [f64], grad: &[f64]) -> Result<(), RunError> {
        self.validate()?;
        let n = params.len();
        if grad.len() != n || state.m.len() != n || state.v.len() != n {
            return Err(RunError::new(
                "adam",
                format!(
                    "expected the gradient and both moments to have the {n} entries of the parameters, found {}, {} and {}",
                    grad.len(),
                    state.m.len(),
                    state.v.len()
                ),
            ));
        }
        if let Some(i) = grad.iter().position(|g| !g.is_finite()) {
            return Err(RunError::new("adam", format!("expected a finite gradient, found {} at entry {i}", grad[i])));
        }
        let count = state.count + 1;
        // optax raises the decay rate to the (float) step count; powf keeps the correction
        // accurate to an ulp however long the run is.
        let correction1 = 1.0 - self.b1.powf(count as f64);
        let correction2 = 1.0 - self.b2.powf(count as f64);
        for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(state.m.iter_mut()).zip(state.v.iter_mut()) {
            *m = self.b1 * *m + (1.0 - self.b1) * g;
            *v = self.b2 * *v + (1.0 - self.b2) * (g * g);
            let m_hat = *m / correction1;
            let v_hat = *v / correction2;
            let step = m_hat / ((v_hat + self.eps_root).sqrt() + self.eps);
            *p += -self.learning_rate * step;
        }
        state.count = count;
        Ok(())
    }
}
