//! What the e-graph knows about each e-class: its type (shape analysis), whether every element
//! is one known constant (constant folding), and two facts that guard rules which are only
//! sound for some values: the value is finite, or it is non-negative (or NaN).

use egg::{Analysis, DidMerge, EGraph, Id, Language};

use super::lang::{Attr, Expr, Num};
use crate::eval::{binary, compare, unary};
use crate::infer::infer;
use crate::op::{BinaryOp, CmpOp, Op, UnaryOp};
use crate::types::{DType, Dim, Shape, TensorType};

/// The kind of value an e-class holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A tensor; `dtype` is `None` for a weakly typed constant expression.
    Tensor { dtype: Option<DType>, shape: Shape },
    /// An operation's attribute.
    Attr(Attr),
    /// The operation of a custom node (the first child of a `call`).
    Op,
}

/// Facts about an e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub kind: Kind,
    /// Every element equals this value.
    pub konst: Option<f64>,
    /// The value is finite, assuming that sums and products of finite values do not overflow.
    pub finite: bool,
    /// Every element is ≥ 0 or NaN.
    pub nonneg: bool,
}

impl Data {
    pub fn tensor(&self) -> Option<(Option<DType>, &Shape)> {
        match &self.kind {
            Kind::Tensor { dtype, shape } => Some((*dtype, shape)),
            Kind::Attr(_) | Kind::Op => None,
        }
    }

    pub fn attr(&self) -> Option<&Attr> {
        match &self.kind {
            Kind::Attr(a) => Some(a),
            Kind::Tensor { .. } | Kind::Op => None,
        }
    }

    fn opaque(kind: Kind) -> Self {
        Data { kind, konst: None, finite: false, nonneg: false }
    }
}

/// An entry of the leaf table: what `Leaf(i)` stands for.
#[derive(Clone, Debug)]
pub struct LeafEntry {
    pub op: Op,
    /// The leaf's type; `None` for the operation of a custom node.
    pub ty: Option<TensorType>,
}

/// The analysis, holding the leaf table and any type conflicts found (a rule that merged two
/// e-classes of different types would be a bug; the simplifier reports it as an error).
#[derive(Debug, Default)]
pub struct TypeAnalysis {
    pub leaves: Vec<LeafEntry>,
    pub conflicts: Vec<String>,
}

pub type EG = EGraph<Expr, TypeAnalysis>;

impl Analysis<Expr> for TypeAnalysis {
    type Data = Data;

    fn make(egraph: &mut EG, enode: &Expr, _id: Id) -> Data {
        match make(egraph, enode) {
            Ok(d) => d,
            Err(message) => {
                egraph.analysis.conflicts.push(format!("{enode}: {message}"));
                Data::opaque(Kind::Op)
            }
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        if a.kind != b.kind {
            self.conflicts.push(format!("merged e-classes of different types: {:?} and {:?}", a.kind, b.kind));
        }
        let merged = Data {
            kind: a.kind.clone(),
            konst: a.konst.or(b.konst),
            finite: a.finite || b.finite,
            nonneg: a.nonneg || b.nonneg,
        };
        // Constants compare by their bits: NaN ≠ NaN would report a change on every merge and
        // keep egg's rebuild from ever finishing.
        let same = |x: &Data, y: &Data| {
            x.kind == y.kind
                && x.konst.map(f64::to_bits) == y.konst.map(f64::to_bits)
                && x.finite == y.finite
                && x.nonneg == y.nonneg
        };
        let did = DidMerge(!same(&merged, a), !same(&merged, &b));
        *a = merged;
        did
    }

    /// Constant folding: a class whose elements are all one finite constant gets that constant
    /// (broadcast to the class's shape) as a member, which extraction then prefers.
    fn modify(egraph: &mut EG, id: Id) {
        let data = &egraph[id].data;
        let (Some(c), Some((dtype, shape))) = (data.konst, data.tensor()) else { return };
        if !c.is_finite() {
            return;
        }
        let shape = shape.clone();
        let num = egraph.add(Expr::Num(Num::new(c, dtype)));
        let folded = if shape.is_scalar() {
            num
        } else {
            let attr = egraph.add(Expr::Attr(Attr::Shape(shape)));
            egraph.add(Expr::Broadcast([attr, num]))
        };
        egraph.union(id, folded);
    }
}

fn unary_op(enode: &Expr) -> Option<UnaryOp> {
    Some(match enode {
        Expr::Neg(_) => UnaryOp::Neg,
        Expr::Abs(_) => UnaryOp::Abs,
        Expr::Sign(_) => UnaryOp::Sign,
        Expr::Exp(_) => UnaryOp::Exp,
        Expr::Log(_) => UnaryOp::Log,
        Expr::Sqrt(_) => UnaryOp::Sqrt,
        Expr::Recip(_) => UnaryOp::Recip,
        Expr::Relu(_) => UnaryOp::Relu,
        Expr::Sigmoid(_) => UnaryOp::Sigmoid,
        Expr::Tanh(_) => UnaryOp::Tanh,
        Expr::Softplus(_) => UnaryOp::Softplus,
        Expr::NormCdf(_) => UnaryOp::NormCdf,
        Expr::NormPdf(_) => UnaryOp::NormPdf,
        Expr::Lgamma(_) => UnaryOp::Lgamma,
        _ => return None,
    })
}

/// The IR operation an e-node stands for, as far as typing and folding are concerned
/// (`None` for leaves, `polygamma` without its order, and custom calls).
pub fn elementwise_op(enode: &Expr) -> Option<Op> {
    if let Some(u) = unary_op(enode) {
        return Some(Op::Unary(u));
    }
    Some(match enode {
        Expr::Add(_) => Op::Binary(BinaryOp::Add),
        Expr::Sub(_) => Op::Binary(BinaryOp::Sub),
        Expr::Mul(_) => Op::Binary(BinaryOp::Mul),
        Expr::Div(_) => Op::Binary(BinaryOp::Div),
        Expr::Pow(_) => Op::Binary(BinaryOp::Pow),
        Expr::Max(_) => Op::Binary(BinaryOp::Max),
        Expr::Min(_) => Op::Binary(BinaryOp::Min),
        Expr::Lt(_) => Op::Compare(CmpOp::Lt),
        Expr::Le(_) => Op::Compare(CmpOp::Le),
        Expr::Gt(_) => Op::Compare(CmpOp::Gt),
        Expr::Ge(_) => Op::Compare(CmpOp::Ge),
        Expr::Eq(_) => Op::Compare(CmpOp::Eq),
        Expr::Ne(_) => Op::Compare(CmpOp::Ne),
        Expr::Select(_) => Op::Select,
        _ => return None,
    })
}

/// The IR operation of a structural e-node, from its attribute child.
pub fn structural_op(enode: &Expr, attr: &Attr) -> Option<Op> {
    Some(match (enode, attr) {
        (Expr::Transpose(_), Attr::Axes(p)) => Op::Transpose { perm: p.clone() },
        (Expr::Broadcast(_), Attr::Shape(s)) => Op::Broadcast { shape: s.clone() },
        (Expr::Reshape(_), Attr::Shape(s)) => Op::Reshape { shape: s.clone() },
        (Expr::Slice(_), Attr::Range(axis, start, end)) => Op::Slice { axis: *axis, start: *start, end: *end },
        (Expr::Pad(_), Attr::Pad(axis, before, after)) => Op::Pad { axis: *axis, before: *before, after: *after },
        (Expr::Concat(_), Attr::Axis(axis)) => Op::Concat { axis: *axis },
        (Expr::Sum(_), Attr::Axes(a)) => Op::Sum { axes: a.clone() },
        (Expr::ReduceMax(_), Attr::Axes(a)) => Op::ReduceMax { axes: a.clone() },
        (Expr::Cast(_), Attr::DType(d)) => Op::Cast { to: *d },
        (Expr::Polygamma(_), Attr::Order(n)) => Op::Unary(UnaryOp::Polygamma(*n)),
        (Expr::Hist(_), Attr::Reflect(r)) => Op::Hist { reflect: *r },
        _ => return None,
    })
}

fn make(egraph: &EG, enode: &Expr) -> Result<Data, String> {
    let child = |i: &Id| &egraph[*i].data;
    match enode {
        Expr::Num(n) => {
            let v = n.value();
            return Ok(Data {
                kind: Kind::Tensor { dtype: n.dtype, shape: Shape::scalar() },
                konst: Some(v),
                finite: v.is_finite(),
                nonneg: v >= 0.0 || v.is_nan(),
            });
        }
        Expr::Attr(a) => return Ok(Data::opaque(Kind::Attr(a.clone()))),
        Expr::Leaf(l) => {
            let entry = egraph.analysis.leaves.get(l.0).ok_or("leaf outside the leaf table")?;
            return Ok(Data::opaque(match &entry.ty {
                Some(ty) => Kind::Tensor { dtype: Some(ty.dtype), shape: ty.shape.clone() },
                None => Kind::Op,
            }));
        }
        _ => {}
    }
    // Split the children into an optional leading attribute (or custom op) and tensor operands.
    let children = enode.children();
    let (head, operands): (Option<&Data>, &[Id]) = if enode.has_head() {
        (children.first().map(child), &children[1.min(children.len())..])
    } else {
        (None, children)
    };
    let mut types = Vec::with_capacity(operands.len());
    for i in operands {
        types.push(child(i).tensor().ok_or("expected a tensor operand, found an attribute")?);
    }
    // Weak operands take the dtype of the typed ones.
    let dtypes: Vec<DType> = types.iter().filter_map(|(d, _)| *d).collect();
    if dtypes.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("operands of different dtypes {dtypes:?}"));
    }
    let unified = dtypes.first().copied();
    let op = match (elementwise_op(enode), head) {
        (Some(op), _) => op,
        (None, Some(d)) => match (&d.kind, enode) {
            (Kind::Op, Expr::Call(_)) => {
                let Expr::Leaf(l) = egraph[children[0]].nodes.first().ok_or("empty class")? else {
                    return Err("expected a custom operation as the first child of a call".into());
                };
                egraph.analysis.leaves[l.0].op.clone()
            }
            (Kind::Attr(a), _) => structural_op(enode, a).ok_or("attribute of the wrong kind")?,
            _ => return Err("expected an attribute".into()),
        },
        (None, None) => match enode {
            Expr::MatMul(_) => Op::MatMul,
            _ => return Err("unknown operation".into()),
        },
    };
    let elementwise = elementwise_op(enode).is_some() || matches!(enode, Expr::Polygamma(_));
    let mut shapes: Vec<Shape> = types.iter().map(|(_, s)| (*s).clone()).collect();
    if elementwise {
        let mut common = Shape::scalar();
        for s in &shapes {
            common = common.broadcast_with(s)?;
        }
        shapes = vec![common; shapes.len()];
    }
    let concrete = unified.unwrap_or(DType::F64);
    let tys: Vec<TensorType> = shapes.into_iter().map(|s| TensorType::new(concrete, s)).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let out = infer(&op, &refs)?;
    let dtype = match op {
        Op::Cast { to } => Some(to),
        _ => unified,
    };
    let konsts: Vec<Option<f64>> = operands.iter().map(|i| child(i).konst).collect();
    let finite: Vec<bool> = operands.iter().map(|i| child(i).finite).collect();
    let nonneg: Vec<bool> = operands.iter().map(|i| child(i).nonneg).collect();
    let in_shape = types.first().map(|(_, s)| (*s).clone()).unwrap_or_default();
    let konst = fold(&op, &konsts, &in_shape).map(|c| dtype.map_or(c, |d| d.round(c)));
    let all = |v: &[bool]| v.iter().all(|&b| b);
    let (finite, nonneg) = match &op {
        Op::Compare(_) => (true, true),
        Op::Unary(u) => match u {
            UnaryOp::Sigmoid | UnaryOp::NormCdf | UnaryOp::NormPdf => (finite[0], true),
            UnaryOp::Tanh | UnaryOp::Sign | UnaryOp::Neg => (finite[0], false),
            UnaryOp::Abs | UnaryOp::Relu => (finite[0], true),
            UnaryOp::Exp | UnaryOp::Softplus | UnaryOp::Sqrt => (false, true),
            // 1/(−0) = −∞, and −0 counts as non-negative, so nothing is claimed.
            UnaryOp::Recip => (false, false),
            UnaryOp::Log | UnaryOp::Lgamma | UnaryOp::Polygamma(_) => (false, false),
        },
        Op::Binary(b) => match b {
            BinaryOp::Add | BinaryOp::Mul => (all(&finite), all(&nonneg)),
            BinaryOp::Sub => (all(&finite), false),
            BinaryOp::Max => (all(&finite), nonneg.iter().any(|&b| b)),
            BinaryOp::Min => (all(&finite), all(&nonneg)),
            BinaryOp::Div | BinaryOp::Pow => (false, false),
        },
        Op::Select => (finite[1] && finite[2], nonneg[1] && nonneg[2]),
        Op::Transpose { .. } | Op::Broadcast { .. } | Op::Reshape { .. } | Op::Slice { .. } | Op::Pad { .. } => {
            (finite[0], nonneg[0])
        }
        Op::Concat { .. } | Op::Sum { .. } => (all(&finite), all(&nonneg)),
        // The maximum over an empty axis is −∞.
        Op::ReduceMax { axes } if reduces_nonempty(axes, &in_shape) => (all(&finite), all(&nonneg)),
        Op::ReduceMax { .. } => (false, false),
        // Narrowing to f32 can overflow.
        Op::Cast { to: DType::F32 } => (false, nonneg[0]),
        Op::Cast { .. } => (finite[0], nonneg[0]),
        Op::MatMul => (all(&finite), all(&nonneg)),
        // Counts are Φ differences over increasing edges (the interpreter rejects others).
        Op::Hist { .. } => (false, true),
        Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. } | Op::Custom(_) => (false, false),
    };
    // A known constant settles finiteness, whatever the structure says.
    let finite = konst.map_or(finite, f64::is_finite);
    Ok(Data { kind: Kind::Tensor { dtype, shape: out.shape }, konst, finite, nonneg })
}

/// Whether every reduced axis has a fixed, non-zero length.
fn reduces_nonempty(axes: &[usize], shape: &Shape) -> bool {
    axes.iter().all(|&a| matches!(shape.0.get(a), Some(Dim::Fixed(n)) if *n > 0))
}

/// The uniform value of an operation whose operands are uniform constants.
fn fold(op: &Op, k: &[Option<f64>], in_shape: &Shape) -> Option<f64> {
    let first = *k.first()?;
    match op {
        Op::Unary(u) => first.map(|x| unary(*u, x)),
        Op::Binary(b) => Some(binary(*b, first?, k[1]?)),
        Op::Compare(c) => Some(compare(*c, first?, k[1]?)),
        Op::Select => match first {
            Some(c) => k[if c != 0.0 { 1 } else { 2 }],
            None if k[1].map(f64::to_bits) == k[2].map(f64::to_bits) => k[1],
            None => None,
        },
        Op::ReduceMax { axes } if !reduces_nonempty(axes, in_shape) => None,
        Op::Transpose { .. } | Op::Broadcast { .. } | Op::Reshape { .. } | Op::Slice { .. } | Op::ReduceMax { .. } => {
            first
        }
        Op::Cast { .. } => first,
        Op::Pad { .. } => first.filter(|&c| c == 0.0),
        Op::Concat { .. } => {
            let bits = first?.to_bits();
            k.iter().all(|c| c.map(f64::to_bits) == Some(bits)).then_some(f64::from_bits(bits))
        }
        Op::Sum { axes } => {
            let mut count = 1.0;
            for &a in axes {
                match in_shape.0.get(a)? {
                    Dim::Fixed(n) => count *= *n as f64,
                    Dim::Events(_) => return None,
                }
            }
            first.map(|c| c * count)
        }
        Op::MatMul => {
            let inner = in_shape.0.get(1)?.fixed()? as f64;
            Some(first? * k.get(1).copied().flatten()? * inner)
        }
        Op::Hist { .. } | Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. } | Op::Custom(_) => {
            None
        }
    }
}
