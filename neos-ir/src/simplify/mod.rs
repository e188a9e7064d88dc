//! Simplification by equality saturation with egg: the graph becomes an e-graph, a table of
//! rewrite rules grows it with equivalent forms (constant folding and type analysis ride
//! along as an e-class analysis), and the cheapest equivalent graph is extracted under a cost
//! model of FLOPs and bytes. Every run has explicit limits and reports why it stopped.

mod analysis;
mod convert;
mod cost;
mod lang;
mod rules;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use egg::{Runner, StopReason};

use crate::error::{IrError, Result};
use crate::graph::Graph;
use crate::verify::verify;

pub use cost::{graph_cost, TYPICAL_EVENTS};
pub use lang::Expr;
pub use rules::rules;

/// Budgets of one simplification run. Whichever is reached first stops it, and the report says
/// which. The time limit is a safety net: a run stopped by it may differ from one that was
/// not, so tests and snapshots rely on the iteration and node limits.
#[derive(Clone, Debug)]
pub struct SimplifyLimits {
    pub iterations: usize,
    pub nodes: usize,
    pub time: Duration,
}

impl Default for SimplifyLimits {
    fn default() -> Self {
        SimplifyLimits { iterations: 12, nodes: 20_000, time: Duration::from_secs(20) }
    }
}

/// What a simplification run did.
#[derive(Clone, Debug, PartialEq)]
pub struct SimplifyReport {
    /// Why saturation stopped: `saturated`, or the limit that was reached.
    pub stop_reason: String,
    pub iterations: usize,
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    pub rules: usize,
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub cost_before: f64,
    pub cost_after: f64,
    /// How often each rule rewrote the e-graph, most applied first (rules that never applied
    /// are left out).
    pub fired: Vec<(String, usize)>,
    /// The extracted graph cost more than the input by the cost model, so the input (its live
    /// part) was kept: simplification never makes a graph worse by its own measure.
    pub kept_input: bool,
    pub seconds: f64,
}

impl fmt::Display for SimplifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {} nodes, cost {:.4e} → {:.4e}{}; stopped: {} after {} iterations ({} e-nodes, {} e-classes, {} rules)",
            self.nodes_before,
            self.nodes_after,
            self.cost_before,
            self.cost_after,
            if self.kept_input { " (the extraction cost more: input kept)" } else { "" },
            self.stop_reason,
            self.iterations,
            self.egraph_nodes,
            self.egraph_classes,
            self.rules
        )?;
        if !self.fired.is_empty() {
            let fired: Vec<String> = self.fired.iter().map(|(rule, n)| format!("{rule} ×{n}")).collect();
            write!(f, "\nrules applied: {}", fired.join(", "))?;
        }
        Ok(())
    }
}

/// Simplifies the live part of `graph` (the nodes its outputs depend on). The result has the
/// same outputs, the same leaves, and values equal up to rounding (see the rules' soundness
/// notes), and passes [`verify`].
pub fn simplify(graph: &Graph, limits: &SimplifyLimits) -> Result<(Graph, SimplifyReport)> {
    if graph.outputs().is_empty() {
        return Err(IrError::Simplify { message: "expected a graph with named outputs, found none".into() });
    }
    let start = Instant::now();
    let (egraph, roots) = convert::to_egraph(graph)?;
    let rules = rules::rules();
    let runner = Runner::default()
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        .with_time_limit(limits.time)
        .with_egraph(egraph)
        .run(&rules);
    let stop_reason = match &runner.stop_reason {
        Some(StopReason::Saturated) => "saturated".to_string(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(s)) => format!("time limit ({s} s)"),
        Some(StopReason::Other(why)) => why.clone(),
        None => "not run".to_string(),
    };
    if let Some(conflict) = runner.egraph.analysis.conflicts.first() {
        return Err(IrError::Simplify { message: format!("a rewrite broke typing: {conflict}") });
    }
    let roots: Vec<_> = roots.iter().map(|&r| runner.egraph.find(r)).collect();
    let extracted = convert::from_egraph(&runner.egraph, graph, &roots)?.pruned();
    verify(&extracted)?;
    // Extraction picks each e-class's cheapest node, but shared subterms are counted once per
    // use, so the whole can come out dearer than the input; then the input stays.
    let (cost_before, cost_extracted) = (graph_cost(graph), graph_cost(&extracted));
    let kept_input = cost_extracted > cost_before;
    let (simplified, cost_after) = if kept_input { (graph.pruned(), cost_before) } else { (extracted, cost_extracted) };
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    for iteration in &runner.iterations {
        for (rule, n) in &iteration.applied {
            *fired.entry(rule.to_string()).or_default() += n;
        }
    }
    let mut fired: Vec<(String, usize)> = fired.into_iter().filter(|(_, n)| *n > 0).collect();
    fired.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let report = SimplifyReport {
        stop_reason,
        iterations: runner.iterations.len(),
        egraph_nodes: runner.egraph.total_number_of_nodes(),
        egraph_classes: runner.egraph.number_of_classes(),
        rules: rules.len(),
        nodes_before: graph.live_len(),
        nodes_after: simplified.live_len(),
        cost_before,
        cost_after,
        fired,
        kept_input,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((simplified, report))
}
