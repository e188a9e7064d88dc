//! The model of the neos paper (gradhep/neos `model_from_hists`): one channel, the signal
//! scaled by the POI μ (a normfactor), and the background with one histosys between its down
//! and up variations — pyhf's vocabulary and names, so parameters come out as
//! `[correlated_bkg_uncertainty, mu]`.

use super::model::Model;
use super::spec::{Channel, Modifier, ModifierKind, Sample, Spec};
use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};

/// The neos model from the yields `[signal, background, background up, background down]`.
/// Its signature makes it a [`crate::inference::ModelFactory`].
pub fn neos_model<'s>(_: &'s Builder, yields: &[Tensor<'s>]) -> Result<Model<'s>> {
    let [sig, bkg, up, down] = yields else {
        return Err(IrError::Name {
            message: format!(
                "neos model: expected 4 yield arrays (signal, background, up, down), found {}",
                yields.len()
            ),
        });
    };
    let modifier = |name: &str, kind| Modifier { name: name.into(), kind };
    Model::new(Spec {
        channels: vec![Channel {
            name: "singlechannel".into(),
            samples: vec![
                Sample {
                    name: "signal".into(),
                    nominal: *sig,
                    modifiers: vec![modifier("mu", ModifierKind::NormFactor)],
                },
                Sample {
                    name: "background".into(),
                    nominal: *bkg,
                    modifiers: vec![modifier(
                        "correlated_bkg_uncertainty",
                        ModifierKind::HistoSys { hi: *up, lo: *down },
                    )],
                },
            ],
        }],
        poi: Some("mu".into()),
        parameters: Vec::new(),
        normsys_code: Default::default(),
        histosys_code: Default::default(),
    })
}
