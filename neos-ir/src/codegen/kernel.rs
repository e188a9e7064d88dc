//! The code of one entry point: the checks of its leaves, then one block per computed node —
//! a loop with its fused operands inlined as scalar expressions, or a runtime call.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{Ident, Literal, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};

use super::plan::{Kind, Plan, Storage};
use super::{codegen_error, ident, runtime, rust_type, CustomCall, Emitter};
use crate::error::Result;
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, Op, UnaryOp};
use crate::types::{DType, Dim, Shape};

/// A literal of the given dtype; infinities and NaN by name, negative values in parentheses
/// (a negative literal is two tokens).
pub(crate) fn lit(v: f64, d: DType) -> TokenStream {
    let t = rust_type(d);
    if v.is_nan() {
        return quote!(#t::NAN);
    }
    if v.is_infinite() {
        return if v > 0.0 { quote!(#t::INFINITY) } else { quote!(#t::NEG_INFINITY) };
    }
    let l = match d {
        DType::F64 => Literal::f64_suffixed(v.abs()),
        DType::F32 => Literal::f32_suffixed((v as f32).abs()),
    };
    if v.is_sign_negative() {
        quote!((-#l))
    } else {
        quote!(#l)
    }
}

pub(crate) fn slot_ident(d: DType, s: usize) -> Ident {
    match d {
        DType::F32 => format_ident!("s32_{}", s),
        DType::F64 => format_ident!("s64_{}", s),
    }
}

fn dim(d: Dim) -> TokenStream {
    match d {
        Dim::Fixed(k) => quote!(#k),
        Dim::Events(g) => events_ident(g).to_token_stream(),
    }
}

/// The variable holding the number of events of group `g` in an entry point (`ev0`, `ev1`, …).
fn events_ident(g: u16) -> Ident {
    format_ident!("ev{}", g)
}

/// The number of elements of a shape, as an expression (`ev<g>` is the number of events of
/// the shape's group).
fn len(s: &Shape) -> TokenStream {
    let k = s.fixed_numel();
    match s.events_group() {
        Some(g) => {
            let ev = events_ident(g);
            quote!((#ev * #k))
        }
        None => quote!(#k),
    }
}

/// Row-major strides of a shape, as expressions.
fn strides(s: &Shape) -> Vec<TokenStream> {
    let dims = s.dims();
    (0..dims.len()).map(|d| len(&Shape::new(dims[d + 1..].iter().copied()))).collect()
}

/// The position of element `idx` of a row-major array of shape `s`; dimensions of size one
/// contribute nothing.
fn offset(idx: &[TokenStream], s: &Shape) -> TokenStream {
    let terms: Vec<TokenStream> = idx
        .iter()
        .zip(strides(s))
        .zip(s.dims())
        .filter(|(_, d)| **d != Dim::Fixed(1))
        .map(|((i, st), _)| quote!(#i * #st))
        .collect();
    if terms.is_empty() {
        quote!(0usize)
    } else {
        quote!((#(#terms)+*))
    }
}

fn mentions(ts: &TokenStream, name: &str) -> bool {
    ts.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == name,
        TokenTree::Group(g) => mentions(&g.stream(), name),
        _ => false,
    })
}

/// The index at which a loop reads a node: the loop's own position (`identity`, so a node of
/// the loop's shape is read at the flat counter `l`), and per dimension of the node an
/// expression, absent in loops that run over one flat counter.
#[derive(Clone)]
struct Ix {
    dims: Option<Vec<TokenStream>>,
    identity: bool,
}

struct Ctx<'a> {
    g: &'a Graph,
    plan: &'a Plan,
    /// The loop's shape: identity reads of nodes with this shape use `l`.
    loop_shape: Shape,
    next: usize,
}

impl Ctx<'_> {
    fn fresh(&mut self, p: &str) -> Ident {
        self.next += 1;
        format_ident!("{}{}", p, self.next)
    }

    /// The value of `id` at `ix`: computed from its operands if it is fused into this loop (or
    /// is the loop's own node), read from storage otherwise.
    fn value(&mut self, id: NodeId, ix: &Ix, root: bool) -> Result<TokenStream> {
        if !root && self.plan.kind[&id] != Kind::Fused {
            return Ok(self.read(id, ix));
        }
        let node = self.g.node(id);
        let d = node.ty.dtype;
        let t = rust_type(d);
        let zero = lit(0.0, d);
        let one = lit(1.0, d);
        let rt = runtime();
        let arg = |c: &mut Self, k: usize, ix: &Ix| c.value(node.inputs[k], ix, false);
        Ok(match &node.op {
            Op::Unary(u) => {
                let a = arg(self, 0, ix)?;
                unary(*u, a, d)
            }
            Op::Binary(b) => {
                let (x, y) = (arg(self, 0, ix)?, arg(self, 1, ix)?);
                match b {
                    BinaryOp::Add => quote!((#x + #y)),
                    BinaryOp::Sub => quote!((#x - #y)),
                    BinaryOp::Mul => quote!((#x * #y)),
                    BinaryOp::Div => quote!((#x / #y)),
                    BinaryOp::Pow => quote!(#t::powf(#x, #y)),
                    BinaryOp::Max => {
                        let f = format_ident!("nan_max_{}", t.to_string());
                        quote!(#rt::exec::#f(#x, #y))
                    }
                    BinaryOp::Min => {
                        let f = format_ident!("nan_min_{}", t.to_string());
                        quote!(#rt::exec::#f(#x, #y))
                    }
                }
            }
            Op::Compare(c) => {
                let (x, y) = (arg(self, 0, ix)?, arg(self, 1, ix)?);
                let test = match c {
                    CmpOp::Lt => quote!(#x < #y),
                    CmpOp::Le => quote!(#x <= #y),
                    CmpOp::Gt => quote!(#x > #y),
                    CmpOp::Ge => quote!(#x >= #y),
                    CmpOp::Eq => quote!(#x == #y),
                    CmpOp::Ne => quote!(#x != #y),
                };
                quote!((if #test { #one } else { #zero }))
            }
            Op::Select => {
                let c = arg(self, 0, ix)?;
                let (a, b) = (arg(self, 1, ix)?, arg(self, 2, ix)?);
                let cz = lit(0.0, self.g.ty(node.inputs[0]).dtype);
                quote!((if #c != #cz { #a } else { #b }))
            }
            Op::Cast { to } => {
                let a = arg(self, 0, ix)?;
                let to = rust_type(*to);
                quote!((#a as #to))
            }
            Op::Broadcast { shape } => {
                let src = self.g.ty(node.inputs[0]).shape.clone();
                let dims = self.dims(ix)?;
                let off = shape.rank() - src.rank();
                let inner: Vec<TokenStream> = (0..src.rank())
                    .map(|k| {
                        if src.dims()[k] == Dim::Fixed(1) && shape.dims()[k + off] != Dim::Fixed(1) {
                            quote!(0usize)
                        } else {
                            dims[k + off].clone()
                        }
                    })
                    .collect();
                arg(self, 0, &Ix { dims: Some(inner), identity: false })?
            }
            Op::Transpose { perm } => {
                let dims = self.dims(ix)?;
                let mut inner = vec![quote!(0usize); perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inner[p] = dims[i].clone();
                }
                arg(self, 0, &Ix { dims: Some(inner), identity: false })?
            }
            Op::Slice { axis, start, .. } => {
                let mut inner = self.dims(ix)?;
                let a = &inner[*axis];
                inner[*axis] = quote!((#a + #start));
                arg(self, 0, &Ix { dims: Some(inner), identity: false })?
            }
            Op::Pad { axis, before, .. } => {
                let dims = self.dims(ix)?;
                let j = self.fresh("_j");
                let n = dim(self.g.ty(node.inputs[0]).shape.dims()[*axis]);
                let mut inner = dims.clone();
                inner[*axis] = quote!((#j - #before));
                let v = arg(self, 0, &Ix { dims: Some(inner), identity: false })?;
                let a = &dims[*axis];
                let inside = if *before == 0 { quote!(#j < #n) } else { quote!(#j >= #before && #j < #before + #n) };
                quote!({ let #j = #a; if #inside { #v } else { #zero } })
            }
            Op::Concat { axis } => {
                let dims = self.dims(ix)?;
                let j = self.fresh("_j");
                let a = &dims[*axis];
                let mut start = quote!(0usize);
                let mut arms = Vec::new();
                for (k, &input) in node.inputs.iter().enumerate() {
                    let n = dim(self.g.ty(input).shape.dims()[*axis]);
                    let mut inner = dims.clone();
                    inner[*axis] = quote!((#j - #start));
                    let v = arg(self, k, &Ix { dims: Some(inner), identity: false })?;
                    let end = quote!((#start + #n));
                    arms.push((end.clone(), v));
                    start = end;
                }
                let mut chain = arms.last().map(|(_, v)| v.clone()).unwrap_or_else(|| zero.clone());
                for (end, v) in arms.iter().rev().skip(1) {
                    chain = quote!(if #j < #end { #v } else { #chain });
                }
                quote!({ let #j = #a; #chain })
            }
            other => {
                return Err(codegen_error(format!("`{}` cannot run inside a loop", other.name())));
            }
        })
    }

    fn dims(&self, ix: &Ix) -> Result<Vec<TokenStream>> {
        ix.dims.clone().ok_or_else(|| codegen_error("an indexing node reached a flat loop".into()))
    }

    /// Reads a stored node (leaf, buffer or alias) at `ix`.
    fn read(&mut self, id: NodeId, ix: &Ix) -> TokenStream {
        let node = self.g.node(id);
        let shape = &node.ty.shape;
        match &node.op {
            Op::Knob { name, .. } => {
                let k = format_ident!("k_{}", name);
                return quote!(#k);
            }
            Op::Const { value } if value.len() == 1 => {
                return lit(value.iter().next().copied().unwrap_or(0.0), node.ty.dtype);
            }
            _ => {}
        }
        let owner = owner(self.g, self.plan, id);
        if let Op::Knob { .. } | Op::Const { .. } = &self.g.node(owner).op {
            if self.g.ty(owner).shape.fixed_numel() == 1 && !self.g.ty(owner).shape.has_events() {
                return self.read(owner, ix);
            }
        }
        let r = reader(owner);
        if shape.fixed_numel() == 1 && !shape.has_events() {
            return quote!(#r[0]);
        }
        if ix.identity && *shape == self.loop_shape {
            return quote!(#r[l]);
        }
        match &ix.dims {
            Some(d) => {
                let o = offset(d, shape);
                quote!(#r[#o])
            }
            None => quote!(#r[l]),
        }
    }
}

/// The node whose storage `id` reads: itself, or the source of an alias or view.
fn owner(g: &Graph, plan: &Plan, id: NodeId) -> NodeId {
    match plan.kind[&id] {
        Kind::Alias | Kind::TransposedView => owner(g, plan, g.node(id).inputs[0]),
        _ => id,
    }
}

fn local_ident(id: NodeId) -> Ident {
    format_ident!("n{}", id.index())
}

fn reader(id: NodeId) -> Ident {
    format_ident!("r{}", id.index())
}

fn unary(u: UnaryOp, a: TokenStream, d: DType) -> TokenStream {
    let t = rust_type(d);
    let rt = runtime();
    let zero = lit(0.0, d);
    let one = lit(1.0, d);
    // The special functions without a branch-free twin are computed in f64 and rounded, as
    // the interpreter does for f32 nodes.
    let special = |f: TokenStream| match d {
        DType::F64 => quote!(#rt::special::#f(#a)),
        DType::F32 => quote!((#rt::special::#f(#a as f64) as f32)),
    };
    // The elementwise functions of the runtime's `math` module, in the node's own precision:
    // branch-free, so that the loops calling them vectorise, and within a few ulp of libm (the
    // table in `math`'s documentation).
    let math = |f: &str| {
        let f = format_ident!("{f}_{d}");
        quote!(#rt::math::#f(#a))
    };
    match u {
        UnaryOp::Neg => quote!((-#a)),
        UnaryOp::Abs => quote!(#t::abs(#a)),
        UnaryOp::Sign => {
            quote!({ let x: #t = #a; if x > #zero { #one } else if x < #zero { -#one } else { x * #zero } })
        }
        UnaryOp::Exp => math("exp"),
        UnaryOp::Log => math("log"),
        UnaryOp::Sqrt => quote!(#t::sqrt(#a)),
        UnaryOp::Recip => quote!((#one / #a)),
        // +0 for every non-positive input, NaN for NaN.
        UnaryOp::Relu => quote!({ let x: #t = #a; if x > #zero || x.is_nan() { x } else { #zero } }),
        UnaryOp::Sigmoid => math("sigmoid"),
        UnaryOp::Tanh => math("tanh"),
        UnaryOp::Softplus => math("softplus"),
        UnaryOp::NormCdf => math("norm_cdf"),
        UnaryOp::NormPdf => math("norm_pdf"),
        UnaryOp::Lgamma => special(quote!(lgamma)),
        UnaryOp::Polygamma(n) => match d {
            DType::F64 => quote!(#rt::special::polygamma(#n, #a)),
            DType::F32 => quote!((#rt::special::polygamma(#n, #a as f64) as f32)),
        },
    }
}

/// A `&[T]` expression for the storage of a leaf or computed node.
fn data(g: &Graph, plan: &Plan, id: NodeId) -> Result<TokenStream> {
    let id = owner(g, plan, id);
    let node = g.node(id);
    let n = len(&node.ty.shape);
    Ok(match &node.op {
        Op::Input { name } => {
            let f = ident("input", name)?;
            quote!(inputs.#f)
        }
        Op::Param { name } => {
            let f = ident("param", name)?;
            quote!(params.#f.as_slice())
        }
        Op::Knob { name, .. } => {
            let k = format_ident!("k_{}", name);
            quote!(::std::slice::from_ref(&#k))
        }
        Op::Const { value } if value.len() == 1 => {
            let v = lit(value.iter().next().copied().unwrap_or(0.0), node.ty.dtype);
            quote!(&[#v][..])
        }
        Op::Const { .. } => {
            let c = format_ident!("C{}", id.index());
            quote!(&#c[..])
        }
        _ => match &plan.storage[&id] {
            Storage::Output(o) => {
                let f = ident("output", o)?;
                quote!(&self.outputs.#f[..#n])
            }
            Storage::Slot(d, s) => {
                let f = slot_ident(*d, *s);
                quote!(&self.#f[..#n])
            }
            Storage::Local => {
                let v = local_ident(id);
                quote!(&#v[..])
            }
        },
    })
}

/// The statement binding the result buffer `out` of a computed node, sized for this call.
fn out_buffer(g: &Graph, plan: &Plan, id: NodeId) -> Result<TokenStream> {
    let rt = runtime();
    let n = len(&g.ty(id).shape);
    Ok(match &plan.storage[&id] {
        Storage::Output(o) => {
            let f = ident("output", o)?;
            quote!(let out = #rt::exec::exact(&mut self.outputs.#f, #n);)
        }
        Storage::Slot(d, s) => {
            let f = slot_ident(*d, *s);
            quote!(let out = #rt::exec::ensure(&mut self.#f, #n);)
        }
        Storage::Local => {
            let v = local_ident(id);
            quote!(let out = &mut #v[..];)
        }
    })
}

/// Binds a reader `r<id>` for every stored node a loop reads through non-scalar access.
fn readers(g: &Graph, plan: &Plan, id: NodeId, body: &TokenStream) -> Result<Vec<TokenStream>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in plan.reads(g, id) {
        let name = reader(r);
        if seen.insert(r) && mentions(body, &name.to_string()) {
            let d = data(g, plan, r)?;
            out.push(quote!(let #name = #d;));
        }
    }
    Ok(out)
}

/// Whether a loop computing `id` needs one index per dimension (any indexing node fused in).
fn needs_dims(g: &Graph, plan: &Plan, id: NodeId, root: bool) -> bool {
    if !root && plan.kind[&id] != Kind::Fused {
        return false;
    }
    let node = g.node(id);
    let own = matches!(
        node.op,
        Op::Broadcast { .. } | Op::Transpose { .. } | Op::Slice { .. } | Op::Pad { .. } | Op::Concat { .. }
    );
    own || node.inputs.iter().any(|&i| needs_dims(g, plan, i, false))
}

/// Nested loops over `shape` around `body` (which may use `i0`, `i1`, … and the flat counter
/// `l`), or one flat loop when the body needs no per-dimension index.
fn loops(shape: &Shape, body: TokenStream, per_dim: bool) -> TokenStream {
    let n = len(shape);
    if !per_dim {
        let var = if mentions(&body, "l") { quote!(l) } else { quote!(_) };
        return quote!(for #var in 0..#n { #body });
    }
    let uses_l = mentions(&body, "l");
    if shape.rank() == 0 {
        return if uses_l { quote!({ let l = 0usize; #body }) } else { body };
    }
    let mut inner = if uses_l { quote!(#body l += 1;) } else { body };
    for (k, &d) in shape.dims().iter().enumerate().rev() {
        let v = format_ident!("i{}", k);
        let dk = dim(d);
        let var = if mentions(&inner, &v.to_string()) { quote!(#v) } else { quote!(_) };
        inner = quote!(for #var in 0..#dk { #inner });
    }
    if uses_l {
        quote!(let mut l = 0usize; #inner)
    } else {
        inner
    }
}

fn loop_ix(shape: &Shape, per_dim: bool) -> Ix {
    Ix {
        dims: per_dim.then(|| {
            (0..shape.rank())
                .map(|k| {
                    let v = format_ident!("i{}", k);
                    quote!(#v)
                })
                .collect()
        }),
        identity: true,
    }
}

/// The code of one computed node.
fn node_code(g: &Graph, plan: &Plan, id: NodeId, em: &mut Emitter) -> Result<TokenStream> {
    let node = g.node(id);
    let rt = runtime();
    let out = out_buffer(g, plan, id)?;
    let d = node.ty.dtype;
    let t = rust_type(d);
    let code = match &node.op {
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Cast { .. }
        | Op::Broadcast { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. } => {
            let per_dim = needs_dims(g, plan, id, true);
            let mut cx = Ctx { g, plan, loop_shape: node.ty.shape.clone(), next: 0 };
            let ix = loop_ix(&node.ty.shape, per_dim);
            let v = cx.value(id, &ix, true)?;
            let body = loops(&node.ty.shape, quote!(out[l] = #v;), per_dim);
            let rs = readers(g, plan, id, &body)?;
            quote!(#out #(#rs)* #body)
        }
        Op::Sum { axes } | Op::ReduceMax { axes } => {
            let src = g.ty(node.inputs[0]).shape.clone();
            let kept: Vec<usize> = (0..src.rank()).filter(|k| !axes.contains(k)).collect();
            let per_dim = !kept.is_empty() || needs_dims(g, plan, node.inputs[0], false);
            let mut cx = Ctx { g, plan, loop_shape: src.clone(), next: 0 };
            let ix = loop_ix(&src, per_dim);
            let v = cx.value(node.inputs[0], &ix, false)?;
            let o = if kept.is_empty() {
                quote!(0usize)
            } else {
                let idx: Vec<TokenStream> = kept
                    .iter()
                    .map(|k| {
                        let v = format_ident!("i{}", k);
                        quote!(#v)
                    })
                    .collect();
                offset(&idx, &node.ty.shape)
            };
            let (init, step) = if matches!(node.op, Op::Sum { .. }) {
                (lit(0.0, d), quote!(out[#o] += #v;))
            } else {
                let f = format_ident!("nan_max_{}", t.to_string());
                (lit(f64::NEG_INFINITY, d), quote!(out[#o] = #rt::exec::#f(out[#o], #v);))
            };
            let body = loops(&src, step, per_dim);
            let rs = readers(g, plan, id, &body)?;
            quote!(#out out.fill(#init); #(#rs)* #body)
        }
        Op::MatMul => {
            let mut args = Vec::new();
            for &i in &node.inputs {
                let (src, transposed) = match plan.kind[&i] {
                    Kind::TransposedView => (g.node(i).inputs[0], true),
                    _ => (i, false),
                };
                let s = g.ty(src).shape.dims().to_vec();
                let (rows, cols) = (dim(s[0]), dim(s[1]));
                let data = data(g, plan, src)?;
                args.push(quote!(#data, #rows, #cols, #transposed));
            }
            let f = format_ident!("matmul_{}", t.to_string());
            let (a, b) = (&args[0], &args[1]);
            quote!(#out #rt::exec::#f(#a, #b, out)?;)
        }
        Op::Hist { reflect } => {
            let values = data(g, plan, node.inputs[0])?;
            let edges = data(g, plan, node.inputs[1])?;
            let h = data(g, plan, node.inputs[2])?;
            let f = format_ident!("hist_{}", t.to_string());
            quote!(#out #rt::exec::#f(#values, #edges, (#h)[0], #reflect, out)?;)
        }
        Op::Custom(c) => {
            let args = node.inputs.iter().map(|&i| data(g, plan, i)).collect::<Result<Vec<_>>>()?;
            let call = CustomCall {
                args,
                arg_types: node.inputs.iter().map(|&i| g.ty(i).clone()).collect(),
                out: quote!(out),
                out_type: node.ty.clone(),
            };
            let code = c.0.emit(em, &call).map_err(|m| codegen_error(format!("{}: {m}", c.0.name())))?;
            quote!(#out #code)
        }
        // A reshape that is an output gets its own copy; elsewhere it reads its operand.
        Op::Reshape { .. } => {
            let src = data(g, plan, node.inputs[0])?;
            quote!(#out out.copy_from_slice(#src);)
        }
        Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. } => {
            return Err(codegen_error(format!("`{}` was scheduled as a computed node", node.op.name())));
        }
    };
    let comment = format!("%{} = {}", id.index(), node.op.name());
    Ok(quote!({ let _ = #comment; #code }))
}

/// The body of an entry point: leaf checks, the computed nodes in order, and copies for
/// outputs whose values live elsewhere.
pub(crate) fn entry_body(
    g: &Graph,
    plan: &Plan,
    outputs: &[(String, NodeId)],
    em: &mut Emitter,
) -> Result<TokenStream> {
    let rt = runtime();
    let mut pre = Vec::new();
    // The inputs that size each events group, and the groups the entry point's nodes use.
    let mut event_inputs: BTreeMap<u16, Vec<TokenStream>> = BTreeMap::new();
    let used_groups: BTreeSet<u16> = plan.order.iter().filter_map(|&id| g.ty(id).shape.events_group()).collect();
    let (mut uses_params, mut uses_inputs, mut uses_knobs) = (false, false, false);
    for &id in &plan.order {
        let node = g.node(id);
        let n = node.ty.shape.fixed_numel();
        let check = format_ident!("check_{}", rust_type(node.ty.dtype).to_string());
        match &node.op {
            Op::Input { name } => {
                uses_inputs = true;
                let f = ident("input", name)?;
                if let Some(group) = node.ty.shape.events_group() {
                    event_inputs.entry(group).or_default().push(quote!((#name, inputs.#f.len(), #n)));
                } else {
                    pre.push(quote!(#rt::exec::check_len(#name, inputs.#f.len(), #n)?;));
                }
                pre.push(quote!(#rt::exec::#check(#name, inputs.#f)?;));
            }
            Op::Param { name } => {
                uses_params = true;
                let f = ident("param", name)?;
                pre.push(quote!(#rt::exec::check_len(#name, params.#f.len(), #n)?;));
                pre.push(quote!(#rt::exec::#check(#name, &params.#f)?;));
            }
            Op::Knob { name, .. } => {
                uses_knobs = true;
                let f = ident("knob", name)?;
                let k = format_ident!("k_{}", name);
                let value = match node.ty.dtype {
                    DType::F64 => quote!(knobs.#f),
                    DType::F32 => quote!((knobs.#f as f32)),
                };
                let t = rust_type(node.ty.dtype);
                pre.push(quote! {
                    let #k: #t = #value;
                    #rt::exec::#check(#name, ::std::slice::from_ref(&#k))?;
                });
            }
            Op::Const { value } if value.len() != 1 || node.ty.shape.has_events() => {
                let c = format_ident!("C{}", id.index());
                let t = rust_type(node.ty.dtype);
                let vals: Vec<TokenStream> = value.iter().map(|&v| lit(v, node.ty.dtype)).collect();
                let k = vals.len();
                pre.push(quote!(const #c: [#t; #k] = [#(#vals),*];));
            }
            _ => {}
        }
    }
    // Each group's count comes from its inputs, which must agree; a group that no input of
    // this entry point sizes (a broadcast to events without event data) has none.
    let events = used_groups.iter().map(|&group| {
        let ev = events_ident(group);
        match event_inputs.get(&group) {
            Some(inputs) => quote!(let #ev = #rt::exec::events(&[#(#inputs),*])?;),
            None => quote!(let #ev = 0usize;),
        }
    });
    let events = quote!(#(#events)*);
    let mut body = Vec::new();
    for &id in &plan.order {
        if plan.kind[&id] == Kind::Computed {
            if plan.storage.get(&id) == Some(&Storage::Local) {
                let v = local_ident(id);
                let t = rust_type(g.ty(id).dtype);
                let n = g.ty(id).shape.fixed_numel();
                let zero = lit(0.0, g.ty(id).dtype);
                body.push(quote!(let mut #v: [#t; #n] = [#zero; #n];));
            }
            body.push(node_code(g, plan, id, em)?);
        }
    }
    for (name, id) in outputs {
        if plan.storage.get(id) == Some(&Storage::Output(name.clone())) {
            continue;
        }
        let f = ident("output", name)?;
        let n = len(&g.ty(*id).shape);
        let src = data(g, plan, *id)?;
        body.push(quote!(#rt::exec::exact(&mut self.outputs.#f, #n).copy_from_slice(#src);));
    }
    let mut silence = Vec::new();
    if !uses_params {
        silence.push(quote!(let _ = params;));
    }
    if !uses_inputs {
        silence.push(quote!(let _ = inputs;));
    }
    if !uses_knobs {
        silence.push(quote!(let _ = knobs;));
    }
    Ok(quote!(#(#silence)* #events #(#pre)* #(#body)*))
}
