//! Scheduling one entry point: which nodes get a buffer, which are fused into the loop of
//! their consumer, and which buffers can share storage.
//!
//! Every node the entry's outputs depend on is one of:
//! - a **leaf**, read where the caller keeps it (inputs, params, knobs, constants);
//! - **fused**: an elementwise or indexing node with a single consumer that is itself a loop
//!   (elementwise, indexing or a reduction), computed inside that consumer's loop as a scalar
//!   expression, so chains such as `relu(x·W + b)` or `Σ (a − b)²` are one pass;
//! - an **alias**: a reshape, which reads its operand's buffer with another shape;
//! - a **transposed view**: a 2-D transpose read only by matrix products, which take it as a
//!   transposed operand instead of copying it;
//! - **computed** into a buffer of its own: everything else (matrix products, histograms,
//!   reductions, custom nodes, nodes read more than once, outputs).
//!
//! Buffers are assigned by liveness: a buffer is released after the last node that reads it,
//! and a later node of the same dtype takes it over.

use std::collections::BTreeMap;

use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::DType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Leaf,
    Fused,
    Alias,
    TransposedView,
    Computed,
}

/// Where a computed node's values live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    /// The entry's named output (the first name, when a node is output under several).
    Output(String),
    /// A reusable buffer of the program: its dtype and its number among that dtype's buffers.
    Slot(DType, usize),
    /// A fixed-size array on the stack of the entry point, for small results whose size is
    /// known when the code is generated (fit objectives are made of these: no allocation, no
    /// size checks).
    Local,
}

/// The schedule of one entry point.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The nodes the outputs depend on, operands first.
    pub order: Vec<NodeId>,
    pub kind: BTreeMap<NodeId, Kind>,
    pub storage: BTreeMap<NodeId, Storage>,
    /// Number of buffers used per dtype (f32, f64).
    pub slots: [usize; 2],
}

/// Whether an op computes each element of its result from elements of its operands at
/// related positions, so that it can run inside a loop over its result.
pub(crate) fn is_loop_op(op: &Op) -> bool {
    match op {
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Cast { .. }
        | Op::Broadcast { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. } => true,
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Knob { .. }
        | Op::Const { .. }
        | Op::MatMul
        | Op::Reshape { .. }
        | Op::Sum { .. }
        | Op::ReduceMax { .. }
        | Op::Hist { .. }
        | Op::Custom(_) => false,
    }
}

/// Whether an op's loop can absorb fused operands: the loop ops and the reductions.
fn absorbs(op: &Op) -> bool {
    is_loop_op(op) || matches!(op, Op::Sum { .. } | Op::ReduceMax { .. })
}

/// The largest result, in elements, kept on the stack rather than in a program buffer.
const LOCAL_LIMIT: usize = 256;

pub(crate) fn dtype_slot(d: DType) -> usize {
    match d {
        DType::F32 => 0,
        DType::F64 => 1,
    }
}

impl Plan {
    pub(crate) fn new(g: &Graph, outputs: &[(String, NodeId)]) -> Plan {
        let roots: Vec<NodeId> = outputs.iter().map(|(_, id)| *id).collect();
        let order = g.topo_order(&roots);
        let mut users: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for &id in &order {
            for &i in &g.node(id).inputs {
                users.entry(i).or_default().push(id);
            }
        }
        let is_output = |id: NodeId| roots.contains(&id);
        let mut kind = BTreeMap::new();
        for &id in &order {
            let node = g.node(id);
            let us = users.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let k = if node.op.is_leaf() {
                Kind::Leaf
            } else if matches!(node.op, Op::Reshape { .. }) && !is_output(id) {
                Kind::Alias
            } else if matches!(&node.op, Op::Transpose { perm } if perm == &[1, 0])
                && !is_output(id)
                && !us.is_empty()
                && us.iter().all(|&u| matches!(g.node(u).op, Op::MatMul))
            {
                Kind::TransposedView
            } else if is_loop_op(&node.op)
                && !is_output(id)
                && us.len() == 1
                && absorbs(&g.node(us[0]).op)
                // A broadcast would evaluate a fused operand once per copy, so its operand
                // gets a buffer of its own.
                && !matches!(g.node(us[0]).op, Op::Broadcast { .. })
            {
                Kind::Fused
            } else {
                Kind::Computed
            };
            kind.insert(id, k);
        }
        // Reshapes and views read their operand's buffer, which therefore must exist.
        for &id in order.iter().rev() {
            if matches!(kind[&id], Kind::Alias | Kind::TransposedView) {
                let src = g.node(id).inputs[0];
                if kind[&src] == Kind::Fused {
                    kind.insert(src, Kind::Computed);
                }
            }
        }
        let mut plan = Plan { order, kind, storage: BTreeMap::new(), slots: [0, 0] };
        plan.assign(g, outputs);
        plan
    }

    /// The nodes whose buffers (or leaf storage) the computation of `id` reads.
    pub(crate) fn reads(&self, g: &Graph, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        for &i in &g.node(id).inputs {
            self.owners(g, i, &mut out);
        }
        out
    }

    fn owners(&self, g: &Graph, id: NodeId, out: &mut Vec<NodeId>) {
        match self.kind[&id] {
            Kind::Leaf | Kind::Computed => out.push(id),
            Kind::Alias | Kind::TransposedView => self.owners(g, g.node(id).inputs[0], out),
            Kind::Fused => {
                for &i in &g.node(id).inputs {
                    self.owners(g, i, out);
                }
            }
        }
    }

    /// Gives every computed node its storage: outputs their own vectors, the rest buffers
    /// taken over from nodes that are no longer read.
    fn assign(&mut self, g: &Graph, outputs: &[(String, NodeId)]) {
        let computed: Vec<NodeId> = self.order.iter().copied().filter(|id| self.kind[id] == Kind::Computed).collect();
        let mut last_use: BTreeMap<NodeId, usize> = BTreeMap::new();
        for (pos, &id) in computed.iter().enumerate() {
            for r in self.reads(g, id) {
                last_use.insert(r, pos);
            }
        }
        let mut dying: Vec<Vec<NodeId>> = vec![Vec::new(); computed.len()];
        for (&r, &pos) in &last_use {
            dying[pos].push(r);
        }
        let mut free: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for (pos, &id) in computed.iter().enumerate() {
            let ty = g.ty(id);
            let storage = match outputs.iter().find(|(_, o)| *o == id) {
                Some((name, _)) => Storage::Output(name.clone()),
                None if !ty.shape.has_events() && ty.shape.fixed_numel() <= LOCAL_LIMIT => Storage::Local,
                None => {
                    let d = dtype_slot(g.ty(id).dtype);
                    let slot = free[d].pop().unwrap_or_else(|| {
                        self.slots[d] += 1;
                        self.slots[d] - 1
                    });
                    Storage::Slot(g.ty(id).dtype, slot)
                }
            };
            self.storage.insert(id, storage);
            // Release the buffers whose last reader this node was (after it ran, so that no
            // node writes a buffer it is reading).
            for r in &dying[pos] {
                if let Some(Storage::Slot(dt, s)) = self.storage.get(r) {
                    free[dtype_slot(*dt)].push(*s);
                }
            }
            // A computed node nobody reads (only possible for outputs) keeps its storage.
        }
    }
}
