//! HistFactory models with pyhf's semantics: the one specification type ([`Spec`], generic
//! over the data it holds) with the modifier types' facts ([`ModifierType`]), the model built
//! from it ([`Model`]: pyhf's parameter layout and the likelihood as a few graph nodes with
//! their own derivative rules), and pyhf JSON workspaces in and out ([`Workspace`]).

mod export;
mod layout;
mod model;
mod neos;
mod node;
mod spec;
mod workspace;

pub use export::{export_template, fill_template};
pub use model::{Model, ModelData, ParamSet};
pub use neos::neos_model;
pub use neos_runtime::histfactory::{Constraint, Effect, Field, FieldShape};
pub use spec::{Channel, HistoSysCode, Modifier, ModifierType, NormSysCode, ParameterConfig, Sample, Spec, HI, LO};
pub use workspace::{Measurement, Workspace};
