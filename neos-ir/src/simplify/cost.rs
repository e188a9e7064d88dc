//! The cost model used to pick the cheapest member of each e-class, and to report the cost of
//! a graph before and after simplification: floating-point operations plus the elements
//! written, for a typical batch size.

use egg::{CostFunction, Id, Language};

use super::analysis::{elementwise_op, structural_op, Kind, EG};
use super::lang::Expr;
use crate::graph::Graph;
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::types::{DType, TensorType};

/// The number of events assumed when a shape has the events dimension.
pub const TYPICAL_EVENTS: usize = 1000;

/// Cost of one node: FLOPs, plus one unit per eight bytes written (views cost nothing but
/// the unit every node costs, which keeps extraction from choosing needless nodes).
pub fn node_cost(op: &Op, out: &TensorType, inputs: &[&TensorType]) -> f64 {
    let n = |t: &TensorType| t.shape.numel(TYPICAL_EVENTS) as f64;
    let elements = n(out);
    let written = elements * out.dtype.size_of() as f64 / DType::F64.size_of() as f64;
    let per_element = |flops: f64| 1.0 + flops * elements + written;
    match op {
        Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. } => 1.0,
        Op::Reshape { .. } => 1.0,
        Op::Unary(u) => per_element(match u {
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu => 1.0,
            UnaryOp::Recip | UnaryOp::Sqrt => 4.0,
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Sigmoid | UnaryOp::Tanh | UnaryOp::Softplus => 16.0,
            UnaryOp::NormCdf | UnaryOp::NormPdf => 20.0,
            UnaryOp::Lgamma | UnaryOp::Polygamma(_) => 40.0,
        }),
        Op::Binary(b) => per_element(match b {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min => 1.0,
            BinaryOp::Div => 4.0,
            BinaryOp::Pow => 40.0,
        }),
        Op::Compare(_) | Op::Select => per_element(1.0),
        Op::MatMul => {
            let inner = inputs.first().and_then(|t| t.shape.0.get(1)).map_or(1, |d| d.resolve(TYPICAL_EVENTS));
            1.0 + 2.0 * inner as f64 * elements + written
        }
        Op::Sum { .. } | Op::ReduceMax { .. } => 1.0 + inputs.first().map_or(0.0, |t| n(t)) + written,
        Op::Transpose { .. }
        | Op::Broadcast { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. }
        | Op::Cast { .. } => per_element(0.0),
        // Two Φ evaluations per value and edge, shared between neighbouring bins.
        Op::Hist { .. } => 1.0 + 20.0 * inputs.iter().take(2).map(|t| n(t)).product::<f64>() + written,
        Op::Custom(_) => per_element(100.0),
    }
}

/// The cost of a graph's live nodes, each counted once.
pub fn graph_cost(graph: &Graph) -> f64 {
    graph
        .live_nodes()
        .into_iter()
        .map(|id| {
            let node = graph.node(id);
            let inputs: Vec<&TensorType> = node.inputs.iter().map(|&i| graph.ty(i)).collect();
            node_cost(&node.op, &node.ty, &inputs)
        })
        .sum()
}

/// [`node_cost`] for e-nodes, reading types from the analysis.
pub struct CostModel<'a> {
    pub egraph: &'a EG,
}

impl CostModel<'_> {
    fn tensor_type(&self, id: Id) -> Option<TensorType> {
        match &self.egraph[id].data.kind {
            Kind::Tensor { dtype, shape } => Some(TensorType::new(dtype.unwrap_or(DType::F64), shape.clone())),
            Kind::Attr(_) | Kind::Op => None,
        }
    }

    fn own_cost(&self, enode: &Expr) -> f64 {
        let Some(class) = self.egraph.lookup(enode.clone()) else { return 1.0 };
        let Some(out) = self.tensor_type(class) else { return 1.0 };
        let children = enode.children();
        let attr = children.first().and_then(|&c| self.egraph[c].data.attr());
        let op = match (elementwise_op(enode), attr) {
            (Some(op), _) => op,
            (None, Some(a)) => match structural_op(enode, a) {
                Some(op) => op,
                None => return 1.0,
            },
            (None, None) => match enode {
                Expr::MatMul(_) => Op::MatMul,
                Expr::Call(_) => return 1.0 + 100.0 * out.shape.numel(TYPICAL_EVENTS) as f64,
                _ => return 1.0,
            },
        };
        let inputs: Vec<TensorType> = children.iter().filter_map(|&c| self.tensor_type(c)).collect();
        let refs: Vec<&TensorType> = inputs.iter().collect();
        node_cost(&op, &out, &refs)
    }
}

impl CostFunction<Expr> for CostModel<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &Expr, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = self.own_cost(enode);
        enode.fold(own, |sum, id| sum + costs(id))
    }
}
