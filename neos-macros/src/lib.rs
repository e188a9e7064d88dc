//! The `neos!` procedural macro: an analysis written in the neos language becomes a Rust type
//! that computes its losses, their gradients and its metrics with specialised code.
//!
//! The macro is thin: [`neos`] calls `expand` (`parse` → `validate` → `neos_ir::lang`, which
//! lowers, differentiates and simplifies → `neos_ir::codegen` → the analysis type). `expand`
//! maps tokens to tokens, so it is tested and snapshot without rustc.
//!
//! # The language
//!
//! ```text
//! neos::neos! {
//!     /// The four-blob problem of the neos paper.
//!     pub analysis Blobs {
//!         inputs { sig: events[2], bkg_nom: events[2], bkg_up: events[2], bkg_down: events[2] }
//!         knobs { bandwidth = 0.09, lumi = 10.0 }
//!         params {
//!             nn = mlp(2 => 1024 => 1024 => 1, relu, sigmoid);
//!             edges = bin_edges(0.0..1.0, bins = 4, trainable);
//!         }
//!         let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);
//!         let b = hist(nn(bkg_nom), edges, bandwidth, scale = 10.0 * lumi);
//!         let bup = hist(nn(bkg_up), edges, bandwidth, scale = 10.0 * lumi);
//!         let bdn = hist(nn(bkg_down), edges, bandwidth, scale = 10.0 * lumi);
//!         model {
//!             channel singlechannel {
//!                 sample signal = s { normfactor mu }
//!                 sample background = b { histosys correlated_bkg_uncertainty(lo = bdn, hi = bup) }
//!             }
//!             poi mu;
//!         }
//!         loss cls(mu = 1.0), discovery, poi_uncert, bce(nn(sig), nn(bkg_nom), nn(bkg_up), nn(bkg_down));
//!         metrics cls, discovery, poi_uncert;
//!     }
//! }
//! ```
//!
//! Sections may come in any order, each at most once (`let`s are many and see what is
//! declared before them, and every input, knob and parameter):
//!
//! - `inputs { name: events[features], name: weighted events[features], … }` — samples of
//!   events, each with its own number of events (samples cannot be combined event by event). A
//!   `weighted` sample's array has one more column, its per-event weight, last; the weights are
//!   Monte Carlo weights normalised so that the whole sample's sum to its expected yield.
//! - `knobs { name = default, … }` — run-time scalars (bandwidth, luminosity).
//! - `params { … }` — what is trained:
//!   `mlp(in => hidden => … => out, hidden_activation[, output_activation][, precision = f32])`
//!   with activations `relu`, `tanh`, `sigmoid`, `softplus`, `identity`, and `softmax` as the
//!   output activation of a network of two or more outputs (stax's `Dense` layers: weights
//!   `name_w0`, biases `name_b0`, …, glorot-normal and normal(1e-2) at init; a one-output
//!   network gives one value per event, a k-output network k). `precision = f32` runs the
//!   network's products and activations in f32 (about twice as fast on wide layers) and casts
//!   its outputs to f64 for the histograms and statistics; the default is f64, neos's own, in
//!   which the reference numbers are reproduced to 1e-8; `bin_edges(lo..hi, bins = n[, trainable])` or
//!   `bin_edges([e0, e1, …][, trainable])` (trainable edges train the inner edges, the outer
//!   ones stay, and edges are repaired as neos does); `scalar(init)`;
//!   `array([dims], init)` with init a number, `zeros`, `normal(std)`, `glorot` or a list.
//! - `let name = expression;` — numbers, `[1.0, 2.0]` arrays, names, `+ - * /`, `x[i]` (a
//!   feature), `net(x)`, `abs exp log sqrt relu sigmoid tanh softplus sum mean`, and
//!   - `hist(values, edges, bandwidth[, weights = weights(x)][, scale = s][, reflect = true])`:
//!     `relaxed.hist`; with a scale, neos's yields count · s / n + 10⁻³ (s the sample's expected
//!     yield, n its events given); with weights, Σᵢ wᵢ Kᵢⱼ, and with a scale the yields
//!     s · (N / n) · Σᵢ wᵢ Kᵢⱼ + 10⁻³ (s a further factor such as a luminosity ratio);
//!   - `count(x[, weights = weights(x)][, scale = s])`: a one-bin region holding the whole
//!     sample `x` (the same yields with every event in the bin), for control regions;
//!   - `counts(net(x)[, weights = weights(x)][, scale = s])`: the soft-count histogram of a
//!     softmax network, one bin per output: each bin's yield is the sum of that output over
//!     the sample's events, scaled as `hist`'s (neos 0.0.1's `sum · scale / N`);
//!   - `mean(a, b, …)` and `std(a, b, …)`: the elementwise mean and standard deviation
//!     (NumPy's, ddof 0) of two or more values of one shape, such as several samples'
//!     histograms (`mean(x)` of one value is the mean of its elements);
//!   - `weights(x)`: the weights of weighted input `x`;
//!   - `mcstat(h)`: the Monte Carlo statistical uncertainty of a `hist`, `count` or `counts` `h`, per bin:
//!     s · √((N / n) · Σᵢ wᵢ² Kᵢⱼ²) weighted, s · √(Σᵢ Kᵢⱼ² / (n · N)) unweighted — √Σw² for
//!     hard bins, what `staterror` and `shapesys` take, differentiable in the network.
//!
//!   N is a sample's whole number of events when the events given are a part of it (a batch, a
//!   test set): the knob `<input>_events`, which the trainer sets (not set: the events given
//!   are the whole sample).
//! - `model { … }` — pyhf's vocabulary: `channel name { sample name = yields { modifiers } … }`
//!   with modifiers `normfactor n`, `shapefactor n`, `lumi n`, `normsys n(lo = …, hi = …)`,
//!   `histosys n(lo = …, hi = …)`, `staterror n(uncertainties)`, `shapesys n(uncertainties)`;
//!   `poi name;`; `parameter name { init = …, bounds = (lo, hi), fixed = …, auxdata = […],
//!   sigmas = […] }`; `interpolation { normsys = code1|code4, histosys = code0|code2|code4p }`.
//! - `model from "workspace.json" { … }` — an existing analysis: the pyhf workspace's channels,
//!   samples, modifiers and measurement settings (its first measurement, or the one named by
//!   `measurement "name";`), with the block's channels spliced in. A channel of a new name is
//!   added; in a channel of the file's, a sample replaces the file's sample of its name or joins
//!   them. Modifiers share parameters with the file's by name; the block's `poi` and
//!   `parameter` settings take precedence. The path is relative to the crate's `Cargo.toml`; the
//!   file is read when the crate is compiled, and editing it rebuilds the analysis.
//! - `loss entry, …;` — objectives selectable at run time, the first the default: `cls`,
//!   `cls(mu = 1.0)` (the poi's test value), `discovery`, `poi_uncert`,
//!   `bce(signal_output, background_output, …)`, or `name = 0.5 * cls + 0.5 * bce(…)`.
//! - `metrics entry, …;` — statistics reported each step (also `name = statistic`).
//! - `simplify { iterations = 12, nodes = 20000, seconds = 20 }` — the e-graph's limits.
//!
//! Every mistake is reported at once, at the tokens it is about, and the analysis type is
//! still defined (as a stub), so that code using it reports nothing more.
//!
//! # The analysis type
//!
//! `Blobs::new()`, `init(seed)`, `loss`, `value_and_grad` (by objective name, on a batch of one
//! `ArrayView2` per sample), `metrics`, `values` (every `let` and the bin edges), `network`
//! (a network on any points), `edges`, `workspace` (the analysis as a pyhf JSON workspace),
//! `save_params` and `load_params` (the parameters by name and shape), `PARAMS` (the parameter
//! layout), and the trainer's `Analysis` trait.
//!
//! # Looking at the IR
//!
//! Set `NEOS_PRINT_IR` to a directory when building: each analysis writes
//! `Name.lowered.ir`, `Name.differentiated.ir`, `Name.simplified.ir`,
//! `Name.network_<net>.ir` and `Name.report.txt` (the simplifier's report and how long the
//! expansion took) there. Cargo does not re-expand an unchanged crate, so touch the file (or
//! `cargo clean -p`) first. From a description, `neos_ir::lang::compile(..).printed()` gives
//! the same texts.

mod ast;
mod expand;
mod parse;
mod validate;

/// Compiles an analysis written in the neos language; see the crate docs.
#[proc_macro]
pub fn neos(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand::expand(input.into()).into()
}
