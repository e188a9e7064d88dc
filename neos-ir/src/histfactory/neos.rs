//! The model of the neos paper (gradhep/neos `model_from_hists`): one channel, the signal
//! scaled by the POI μ (a normfactor), and the background with one histosys between its down
//! and up variations — pyhf's vocabulary and names, so parameters come out as
//! `[correlated_bkg_uncertainty, mu]`.

use super::model::Model;
use super::spec::{Channel, Modifier, Sample, Spec};
use crate::builder::Tensor;
use crate::error::{IrError, Result};

/// The neos model from the yields `[signal, background, background up, background down]`.
pub fn neos_model<'b>(yields: &[Tensor<'b>]) -> Result<Model<'b>> {
    let [sig, bkg, up, down] = yields else {
        return Err(IrError::Name {
            message: format!(
                "neos model: expected 4 yield arrays (signal, background, up, down), found {}",
                yields.len()
            ),
        });
    };
    Model::new(Spec {
        channels: vec![Channel::new(
            "singlechannel",
            vec![
                Sample::new("signal", *sig, vec![Modifier::normfactor("mu")]),
                Sample::new("background", *bkg, vec![Modifier::histosys("correlated_bkg_uncertainty", *up, *down)]),
            ],
        )],
        poi: Some(("mu".into(), Default::default())),
        ..Spec::default()
    })
}
