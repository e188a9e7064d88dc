//! HistFactory models with pyhf's semantics: the specification ([`Spec`]), the interpolation
//! codes, the parameter layout and the likelihood lowered into the IR ([`Model`]), and
//! reading pyhf JSON workspaces.

mod interp;
mod model;
mod neos;
mod spec;
mod workspace;

pub use interp::{histosys, normsys, HistoSysCode, NormSysCode};
pub use model::{poisson_logpdf, Constraint, Model, ParamSet};
pub use neos::neos_model;
pub use spec::{Channel, Modifier, ModifierKind, ParameterConfig, Sample, Spec};
pub use workspace::{Measurement, Workspace, WsModifier, WsSample};
