//! The compiler's stages after lowering, and a way to look at each: lowered, differentiated,
//! simplified. The `neos!` macro runs [`compile`]; tests and users can call it (and
//! [`Compiled::printed`]) on a description to see the IR the macro would compile.

use super::desc::Analysis;
use super::lower::{lower, LangError, Lowered, Network};
use crate::graph::Graph;
use crate::print::print;
use crate::simplify::{simplify, SimplifyLimits, SimplifyReport};

/// Every stage of one analysis.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub lowered: Lowered,
    /// The differentiated graph after simplification; the one code is generated from.
    pub simplified: Graph,
    pub report: SimplifyReport,
    /// The networks on their own, simplified.
    pub networks: Vec<Network>,
}

/// Lowers, differentiates and simplifies within `limits`.
pub fn compile(analysis: &Analysis, limits: &SimplifyLimits) -> Result<Compiled, LangError> {
    let lowered = lower(analysis)?;
    let fail = |stage: &str, e: crate::IrError| LangError::one(analysis.at, format!("{stage}: {e}"));
    let (simplified, report) = simplify(&lowered.graph, limits).map_err(|e| fail("simplifying", e))?;
    let mut networks = Vec::new();
    for n in &lowered.networks {
        let (graph, _) = simplify(&n.graph, limits).map_err(|e| fail("simplifying a network", e))?;
        networks.push(Network { graph, ..n.clone() });
    }
    Ok(Compiled { lowered, simplified, report, networks })
}

impl Compiled {
    /// The IR at each stage as (stage, text): `lowered` (values, losses, metrics),
    /// `differentiated` (with the gradients), `simplified` (with the simplifier's report as a
    /// first comment line), then each network's simplified graph as `network_<name>`.
    pub fn printed(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("lowered".to_string(), print(&self.lowered.lowered)),
            ("differentiated".to_string(), print(&self.lowered.graph)),
            ("simplified".to_string(), format!("// {}\n{}", self.report, print(&self.simplified))),
        ];
        for n in &self.networks {
            out.push((format!("network_{}", n.name), print(&n.graph)));
        }
        out
    }
}
