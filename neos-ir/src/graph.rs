//! The IR graph: typed nodes in a petgraph DAG, with named leaves and named outputs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ndarray::ArrayD;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed, Walker};

use crate::error::{IrError, Result};
use crate::infer::{check_valid_shape, infer};
use crate::op::Op;
use crate::types::{DType, Shape, TensorType};

/// A handle on a node of one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) NodeIndex<u32>);

impl NodeId {
    /// The node's position in its graph (insertion order).
    pub fn index(self) -> usize {
        self.0.index()
    }
}

/// A node: its operation, its operands (in order) and its type.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub ty: TensorType,
}

/// A dataflow graph of tensor operations.
///
/// Nodes are only ever appended, and an operand always exists before the node that uses it, so
/// the graph is acyclic by construction. Passes that change the graph (simplification, pruning)
/// build a new one. Edges of the underlying petgraph run from operand to user and carry the
/// operand position.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    dag: DiGraph<Node, u32>,
    outputs: Vec<(String, NodeId)>,
    /// Every non-leaf node by its operation and operands, so that building the same
    /// computation twice returns the existing node (common subexpressions are shared from
    /// the start, including the broadcasts that the builder inserts).
    interned: HashMap<(OpKey, Vec<NodeId>), NodeId>,
}

/// A hashable identity of an operation: its name and attributes, the bits of a constant's
/// values, and the address of a custom rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OpKey {
    text: String,
    bits: Vec<u64>,
}

impl OpKey {
    fn of(op: &Op, ty: &TensorType) -> Self {
        match op {
            Op::Const { value } => {
                OpKey { text: format!("const {ty}"), bits: value.iter().map(|v| v.to_bits()).collect() }
            }
            Op::Custom(c) => OpKey {
                text: format!("{} {ty}", c.0.name()),
                bits: vec![std::sync::Arc::as_ptr(&c.0) as *const () as usize as u64],
            },
            // The derived Debug text names the variant and every attribute.
            _ => OpKey { text: format!("{op:?} {ty}"), bits: Vec::new() },
        }
    }
}

impl Graph {
    pub fn new() -> Self {
        Graph::default()
    }

    /// Number of nodes, live or not.
    pub fn len(&self) -> usize {
        self.dag.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.dag.node_count() == 0
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id.0]
    }

    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.dag[id.0].ty
    }

    /// All node handles in insertion order (which is a topological order).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.dag.node_indices().map(NodeId)
    }

    pub fn check(&self, id: NodeId) -> Result<()> {
        if id.index() < self.len() {
            Ok(())
        } else {
            Err(IrError::UnknownNode { index: id.index(), len: self.len() })
        }
    }

    /// Declares event data. Names of inputs, params and knobs share one namespace.
    pub fn input(&mut self, name: &str, dtype: DType, shape: impl Into<Shape>) -> Result<NodeId> {
        self.leaf(Op::Input { name: name.into() }, TensorType::new(dtype, shape))
    }

    /// Declares a trainable parameter (its shape may not use the events dimension).
    pub fn param(&mut self, name: &str, dtype: DType, shape: impl Into<Shape>) -> Result<NodeId> {
        let ty = TensorType::new(dtype, shape);
        if ty.shape.has_events() {
            return Err(IrError::Name {
                message: format!("param `{name}`: expected a fixed shape, found {}", ty.shape),
            });
        }
        self.leaf(Op::Param { name: name.into() }, ty)
    }

    /// Declares a run-time scalar with a default value.
    pub fn knob(&mut self, name: &str, dtype: DType, default: f64) -> Result<NodeId> {
        self.leaf(Op::Knob { name: name.into(), default }, TensorType::scalar(dtype))
    }

    /// A constant tensor of fixed shape; values are rounded to `dtype`.
    pub fn constant(&mut self, value: ArrayD<f64>, dtype: DType) -> NodeId {
        let shape = Shape::fixed(value.shape());
        let value = value.mapv(|v| dtype.round(v));
        self.push(Op::Const { value: Arc::new(value) }, Vec::new(), TensorType::new(dtype, shape))
    }

    /// A scalar constant.
    pub fn scalar(&mut self, value: f64, dtype: DType) -> NodeId {
        self.constant(ndarray::arr0(value).into_dyn(), dtype)
    }

    fn leaf(&mut self, op: Op, ty: TensorType) -> Result<NodeId> {
        let name = leaf_name(&op).unwrap_or_default().to_string();
        check_valid_shape(&ty.shape).map_err(|message| IrError::Type { op: op.name().into(), message })?;
        if self.find_leaf(&name).is_some() {
            return Err(IrError::Name { message: format!("expected a new name, found `{name}` declared twice") });
        }
        Ok(self.push(op, Vec::new(), ty))
    }

    /// Applies a non-leaf operation, checking operand types.
    pub fn apply(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        if op.is_leaf() {
            return Err(IrError::Type {
                op: op.name().into(),
                message: "expected an operation, found a leaf (declare leaves with input/param/knob/constant)".into(),
            });
        }
        for &i in inputs {
            self.check(i)?;
        }
        let types: Vec<&TensorType> = inputs.iter().map(|&i| self.ty(i)).collect();
        let ty = infer(&op, &types).map_err(|message| IrError::Type { op: op.name().into(), message })?;
        Ok(self.push(op, inputs.to_vec(), ty))
    }

    /// Appends a node with its type as given. Only the graph and the simplifier's extraction,
    /// which carry types over from a checked graph, use it directly.
    pub(crate) fn push(&mut self, op: Op, inputs: Vec<NodeId>, ty: TensorType) -> NodeId {
        // Leaves are never shared: each declaration is its own binding.
        let key = (!op.is_leaf() || matches!(op, Op::Const { .. })).then(|| (OpKey::of(&op, &ty), inputs.clone()));
        if let Some(&existing) = key.as_ref().and_then(|k| self.interned.get(k)) {
            return existing;
        }
        let id = NodeId(self.dag.add_node(Node { op, inputs: inputs.clone(), ty }));
        for (pos, i) in inputs.iter().enumerate() {
            self.dag.add_edge(i.0, id.0, pos as u32);
        }
        if let Some(k) = key {
            self.interned.insert(k, id);
        }
        id
    }

    /// The leaf (input, param or knob) with this name.
    pub fn find_leaf(&self, name: &str) -> Option<NodeId> {
        self.node_ids().find(|&id| leaf_name(&self.node(id).op) == Some(name))
    }

    /// Leaves by name, in name order.
    pub fn leaves(&self) -> BTreeMap<String, NodeId> {
        self.node_ids().filter_map(|id| leaf_name(&self.node(id).op).map(|n| (n.to_string(), id))).collect()
    }

    /// Names `id` as an output; naming an existing output again replaces it.
    pub fn set_output(&mut self, name: &str, id: NodeId) -> Result<()> {
        self.check(id)?;
        match self.outputs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = id,
            None => self.outputs.push((name.to_string(), id)),
        }
        Ok(())
    }

    pub fn outputs(&self) -> &[(String, NodeId)] {
        &self.outputs
    }

    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    /// The nodes `roots` depend on, roots included, in a canonical topological order: a
    /// depth-first post-order from the roots in the given order, visiting operands in operand
    /// order. It depends only on the graph's structure, not on the order nodes were added.
    pub fn topo_order(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut order = Vec::new();
        let mut state = vec![0u8; self.len()]; // 0 new, 1 on the stack, 2 done
        for &root in roots {
            if state[root.index()] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root.index()] = 1;
            while let Some((id, next)) = stack.pop() {
                let inputs = &self.node(id).inputs;
                if next < inputs.len() {
                    stack.push((id, next + 1));
                    let child = inputs[next];
                    if state[child.index()] == 0 {
                        state[child.index()] = 1;
                        stack.push((child, 0));
                    }
                } else {
                    state[id.index()] = 2;
                    order.push(id);
                }
            }
        }
        order
    }

    /// The nodes the named outputs depend on (all nodes when there are no outputs).
    pub fn live_nodes(&self) -> Vec<NodeId> {
        if self.outputs.is_empty() {
            return self.node_ids().collect();
        }
        let roots: Vec<NodeId> = self.outputs.iter().map(|(_, id)| *id).collect();
        self.topo_order(&roots)
    }

    /// Every node that depends on any of `sources` (sources included), as a membership mask.
    pub fn descendants(&self, sources: &[NodeId]) -> Vec<bool> {
        let mut mask = vec![false; self.len()];
        for &s in sources {
            for n in Dfs::new(&self.dag, s.0).iter(&self.dag) {
                mask[n.index()] = true;
            }
        }
        mask
    }

    /// Every node that `sinks` depend on (sinks included), as a membership mask.
    pub fn ancestors(&self, sinks: &[NodeId]) -> Vec<bool> {
        let mut mask = vec![false; self.len()];
        let reversed = Reversed(&self.dag);
        for &s in sinks {
            for n in Dfs::new(reversed, s.0).iter(reversed) {
                mask[n.index()] = true;
            }
        }
        mask
    }

    /// A copy holding the leaves (inputs, params and knobs, in their order, live or not, so
    /// that the copy takes the same bindings) and the live nodes, renumbered in canonical
    /// topological order, with the same outputs.
    pub fn pruned(&self) -> Graph {
        let mut out = Graph::new();
        let mut map: BTreeMap<NodeId, NodeId> = BTreeMap::new();
        let leaves = self.node_ids().filter(|&id| leaf_name(&self.node(id).op).is_some());
        let live: Vec<NodeId> = self.live_nodes();
        for id in leaves.chain(live) {
            if map.contains_key(&id) {
                continue;
            }
            let node = self.node(id);
            let inputs = node.inputs.iter().map(|i| map[i]).collect();
            map.insert(id, out.push(node.op.clone(), inputs, node.ty.clone()));
        }
        for (name, id) in &self.outputs {
            out.outputs.push((name.clone(), map[id]));
        }
        out
    }

    /// Number of nodes the outputs depend on.
    pub fn live_len(&self) -> usize {
        self.live_nodes().len()
    }

    /// The underlying petgraph, for algorithms and visualisation.
    pub fn dag(&self) -> &DiGraph<Node, u32> {
        &self.dag
    }
}

/// The name of an input, param or knob.
pub fn leaf_name(op: &Op) -> Option<&str> {
    match op {
        Op::Input { name } | Op::Param { name } | Op::Knob { name, .. } => Some(name),
        _ => None,
    }
}
