//! Deterministic text and DOT renderings of a graph. Nodes are renumbered in the canonical
//! topological order of [`Graph::topo_order`], so the text depends only on the graph's
//! structure and is stable enough for snapshots.

use std::collections::HashMap;
use std::fmt::Write;

use crate::graph::{Graph, NodeId};
use crate::op::{Op, UnaryOp};

/// One line per live node (`%3 = mul %1, %2 : f64[events, 8]`), then one line per output.
pub fn print(graph: &Graph) -> String {
    let order = graph.live_nodes();
    let numbers: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut out = String::new();
    for (i, &id) in order.iter().enumerate() {
        let node = graph.node(id);
        let operands: Vec<String> = node.inputs.iter().map(|x| format!("%{}", numbers[x])).collect();
        let attrs = attributes(&node.op);
        let sep = if attrs.is_empty() || operands.is_empty() { "" } else { ", " };
        let _ = writeln!(out, "%{i} = {} {}{sep}{attrs} : {}", node.op.name(), operands.join(", "), node.ty);
    }
    for (name, id) in graph.outputs() {
        let _ = writeln!(out, "out {name} = %{}", numbers[id]);
    }
    out.lines().map(|l| l.replace("  ", " ").trim_end().to_string()).collect::<Vec<_>>().join("\n") + "\n"
}

/// The operation's attributes as text (names, values, shapes, axes).
pub fn attributes(op: &Op) -> String {
    match op {
        Op::Input { name } | Op::Param { name } => format!("{name:?}"),
        Op::Knob { name, default } => format!("{name:?} = {default:?}"),
        Op::Const { value } => {
            if value.ndim() == 0 {
                format!("{:?}", value.iter().next().copied().unwrap_or_default())
            } else {
                let shown: Vec<String> = value.iter().take(8).map(|v| format!("{v:?}")).collect();
                let more = if value.len() > 8 { ", …" } else { "" };
                format!("[{}{more}]", shown.join(", "))
            }
        }
        Op::Unary(UnaryOp::Polygamma(n)) if *n > 0 => format!("order {n}"),
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::MatMul | Op::Custom(_) => String::new(),
        Op::Transpose { perm } => format!("perm = {perm:?}"),
        Op::Broadcast { shape } | Op::Reshape { shape } => format!("to {shape}"),
        Op::Slice { axis, start, end } => format!("axis {axis}, {start}..{end}"),
        Op::Pad { axis, before, after } => format!("axis {axis}, before {before}, after {after}"),
        Op::Concat { axis } => format!("axis {axis}"),
        Op::Sum { axes } | Op::ReduceMax { axes } => format!("axes {axes:?}"),
        Op::Cast { to } => format!("to {to}"),
        Op::Hist { reflect: true } => "reflect".into(),
        Op::Hist { reflect: false } => String::new(),
    }
}

/// Graphviz DOT: leaves as boxes, outputs as double octagons, edges labelled by operand
/// position when an operation has more than one operand.
pub fn to_dot(graph: &Graph) -> String {
    let order = graph.live_nodes();
    let numbers: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut out = String::from("digraph neos {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n");
    for (i, &id) in order.iter().enumerate() {
        let node = graph.node(id);
        let attrs = attributes(&node.op).replace('"', "\\\"");
        let shape = if node.op.is_leaf() { "box" } else { "ellipse" };
        let head = if attrs.is_empty() { node.op.name().to_string() } else { format!("{} {attrs}", node.op.name()) };
        let _ = writeln!(out, "  n{i} [label=\"%{i} {head}\\n{}\", shape={shape}];", node.ty);
        for (pos, x) in node.inputs.iter().enumerate() {
            let label = if node.inputs.len() > 1 { format!(" [label=\"{pos}\"]") } else { String::new() };
            let _ = writeln!(out, "  n{} -> n{i}{label};", numbers[x]);
        }
    }
    for (k, (name, id)) in graph.outputs().iter().enumerate() {
        let _ = writeln!(out, "  out{k} [label=\"{name}\", shape=doubleoctagon];\n  n{} -> out{k};", numbers[id]);
    }
    out.push_str("}\n");
    out
}
