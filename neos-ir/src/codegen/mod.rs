//! Code generation: a graph becomes Rust items that compute its outputs with loops specialised
//! to its shapes, calling the runtime (`::neos::__private::runtime`) for matrix products,
//! histograms, solves and fits.
//!
//! [`emit`] returns the items of one program (the caller wraps them in a module):
//!
//! - `Params` (one `Vec` per param leaf, with `LEN`, `zeros`, `from_flat` and `to_flat`, the
//!   flat order being the params' declaration order, each row-major), `Inputs<'a>` (one
//!   row-major slice per input leaf, `[events, …]`), `Knobs` (one `f64` per knob, `Default`
//!   giving the declared defaults) and `Outputs` (one `Vec` per named output of the graph);
//! - `Program`, holding `outputs` and the buffers that the entry points reuse from call to
//!   call, with `Program::new()` and one method per [`Entry`], which computes just the nodes
//!   its outputs need and returns `&Outputs`.
//!
//! Sizes fixed in the graph (layer widths, bins, parameters) are constants in the code; only
//! the number of events is read at run time, from the inputs. Each entry point checks the
//! lengths of the leaves it reads and rejects NaN in them, like the interpreter.
//!
//! The schedule is in `plan.rs`, the loops and calls in `kernel.rs`. Custom nodes generate
//! their own code through [`CustomRule::emit`](crate::CustomRule::emit).

mod kernel;
mod plan;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::error::{IrError, Result};
use crate::graph::{leaf_name, Graph, NodeId};
use crate::op::Op;
use crate::types::{DType, TensorType};

pub(crate) use kernel::lit;
use plan::Plan;

/// An entry point of a generated program: a method computing the named outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub outputs: Vec<String>,
}

impl Entry {
    pub fn new(name: &str, outputs: &[&str]) -> Self {
        Entry { name: name.into(), outputs: outputs.iter().map(|s| s.to_string()).collect() }
    }
}

/// Items and program state that custom nodes add while their code is generated.
#[derive(Debug, Default)]
pub struct Emitter {
    items: Vec<TokenStream>,
    fields: Vec<(Ident, TokenStream, TokenStream)>,
    /// Fields added through [`Emitter::shared_field`], by key.
    shared: std::collections::HashMap<String, Ident>,
    next: usize,
}

impl Emitter {
    /// A new identifier, unique in the program, starting with `prefix`.
    pub fn fresh(&mut self, prefix: &str) -> Ident {
        self.next += 1;
        format_ident!("{}_{}", prefix, self.next)
    }

    /// Adds an item (a nested module, a function, …) beside the program.
    pub fn item(&mut self, item: TokenStream) {
        self.items.push(item);
    }

    /// Adds a field of type `ty` to `Program`, initialised by `init` in `Program::new`, and
    /// returns its name; generated statements reach it as `self.<name>`.
    pub fn field(&mut self, prefix: &str, ty: TokenStream, init: TokenStream) -> Ident {
        let name = self.fresh(prefix);
        self.fields.push((name.clone(), ty, init));
        name
    }

    /// Like [`Emitter::field`], but once per `key`: the nodes of every entry point that ask
    /// for the same key share one field (one decoded model for all the nodes of a likelihood).
    pub fn shared_field(&mut self, key: &str, prefix: &str, ty: TokenStream, init: TokenStream) -> Ident {
        if let Some(name) = self.shared.get(key) {
            return name.clone();
        }
        let name = self.field(prefix, ty, init);
        self.shared.insert(key.to_string(), name.clone());
        name
    }
}

/// What a custom node's code works with: one `&[T]` expression per operand, the `&mut [T]`
/// expression of its result (already of the right length), and their types.
#[derive(Debug)]
pub struct CustomCall {
    pub args: Vec<TokenStream>,
    pub arg_types: Vec<TensorType>,
    pub out: TokenStream,
    pub out_type: TensorType,
}

/// The path of the runtime as generated code sees it.
pub fn runtime() -> TokenStream {
    quote!(::neos::__private::runtime)
}

/// The Rust element type of a dtype.
pub fn rust_type(d: DType) -> TokenStream {
    match d {
        DType::F32 => quote!(f32),
        DType::F64 => quote!(f64),
    }
}

fn codegen_error(message: String) -> IrError {
    IrError::Codegen { message }
}

/// Rust's strict and reserved keywords, which cannot name a field.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
    "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box",
    "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// A leaf or output name as an identifier, or an error saying why it cannot be one.
pub(crate) fn ident(what: &str, name: &str) -> Result<Ident> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
        && !KEYWORDS.contains(&name);
    if !valid {
        return Err(codegen_error(format!(
            "{what} `{name}`: expected a Rust identifier (letters, digits and `_`, not a keyword)"
        )));
    }
    Ok(Ident::new(name, Span::call_site()))
}

/// Emits the program computing `graph`'s named outputs through the given entry points.
pub fn emit(graph: &Graph, entries: &[Entry]) -> Result<TokenStream> {
    crate::verify(graph)?;
    let rt = runtime();
    let mut em = Emitter::default();
    let leaves: Vec<NodeId> = graph.node_ids().filter(|&id| leaf_name(&graph.node(id).op).is_some()).collect();

    let mut param_fields = Vec::new();
    let mut param_len = Vec::new();
    let mut input_fields = Vec::new();
    let mut knob_fields = Vec::new();
    let mut knob_defaults = Vec::new();
    let mut dyn_inputs = Vec::new();
    let mut dyn_input_fields = Vec::new();
    let mut dyn_knobs = Vec::new();
    for &id in &leaves {
        let node = graph.node(id);
        let t = rust_type(node.ty.dtype);
        match &node.op {
            Op::Param { name } => {
                let f = ident("param", name)?;
                param_fields.push((f.clone(), t, node.ty.dtype));
                param_len.push(node.ty.shape.fixed_numel());
            }
            Op::Input { name } => {
                let f = ident("input", name)?;
                input_fields.push(quote!(pub #f: &'a [#t]));
                let v = format_ident!("in_{}", f);
                dyn_inputs.push(quote! {
                    let #v: ::std::vec::Vec<#t> = inputs
                        .iter()
                        .find(|(n, _)| *n == #name)
                        .ok_or_else(|| #rt::RunError::new(#name, "expected a value for this input, found none"))?
                        .1
                        .iter()
                        .map(|&x| x as #t)
                        .collect();
                });
                dyn_input_fields.push(quote!(#f: &#v));
            }
            Op::Knob { name, default } => {
                let f = ident("knob", name)?;
                knob_fields.push(quote!(pub #f: f64));
                let d = lit(*default, DType::F64);
                knob_defaults.push(quote!(#f: #d));
                dyn_knobs.push(quote!(#name => k.#f = *v,));
            }
            _ => {}
        }
    }
    let k_mut = if dyn_knobs.is_empty() { quote!() } else { quote!(mut) };
    let no_inputs = if input_fields.is_empty() { quote!(_none: ::std::marker::PhantomData) } else { quote!() };
    let ignore_inputs = if input_fields.is_empty() { quote!(let _ = inputs;) } else { quote!() };
    if input_fields.is_empty() {
        // The lifetime must be used; a graph without event inputs still takes `Inputs`.
        input_fields.push(quote!(pub _none: ::std::marker::PhantomData<&'a ()>));
    }

    let mut output_fields = Vec::new();
    for (name, id) in graph.outputs() {
        let f = ident("output", name)?;
        let t = rust_type(graph.ty(*id).dtype);
        output_fields.push(quote!(pub #f: ::std::vec::Vec<#t>));
    }

    let mut slots = [0usize, 0usize];
    let mut methods = Vec::new();
    let mut dyn_arms = Vec::new();
    for entry in entries {
        let name = ident("entry", &entry.name)?;
        let mut outs = Vec::new();
        for o in &entry.outputs {
            let id = graph.output(o).ok_or_else(|| {
                let known: Vec<&str> = graph.outputs().iter().map(|(n, _)| n.as_str()).collect();
                codegen_error(format!(
                    "entry `{}`: expected one of the graph's outputs ({}), found `{o}`",
                    entry.name,
                    known.join(", ")
                ))
            })?;
            outs.push((o.clone(), id));
        }
        let entry_name = &entry.name;
        let collect: Vec<TokenStream> = outs
            .iter()
            .map(|(o, _)| {
                let f = ident("output", o)?;
                Ok(quote!((#o, out.#f.iter().map(|&v| v as f64).collect())))
            })
            .collect::<Result<_>>()?;
        dyn_arms.push(quote! {
            #entry_name => {
                let out = self.#name(&params, &inputs, &k)?;
                ::std::vec![#(#collect),*]
            }
        });
        let plan = Plan::new(graph, &outs);
        for (s, n) in slots.iter_mut().zip(plan.slots) {
            *s = (*s).max(n);
        }
        let body = kernel::entry_body(graph, &plan, &outs, &mut em)?;
        methods.push(quote! {
            /// Computes this entry point's outputs.
            pub fn #name(&mut self, params: &Params, inputs: &Inputs<'_>, knobs: &Knobs)
                -> ::std::result::Result<&Outputs, #rt::RunError>
            {
                #body
                ::std::result::Result::Ok(&self.outputs)
            }
        });
    }

    let mut slot_fields = Vec::new();
    let mut slot_inits = Vec::new();
    for (d, dt) in [(0, DType::F32), (1, DType::F64)] {
        for s in 0..slots[d] {
            let f = kernel::slot_ident(dt, s);
            let t = rust_type(dt);
            slot_fields.push(quote!(#f: ::std::vec::Vec<#t>));
            slot_inits.push(quote!(#f: ::std::vec::Vec::new()));
        }
    }
    let extra_fields: Vec<TokenStream> = em.fields.iter().map(|(n, t, _)| quote!(#n: #t)).collect();
    let extra_inits: Vec<TokenStream> = em.fields.iter().map(|(n, _, i)| quote!(#n: #i)).collect();
    let items = &em.items;

    let total: usize = param_len.iter().sum();
    let p_decls: Vec<TokenStream> = param_fields.iter().map(|(f, t, _)| quote!(pub #f: ::std::vec::Vec<#t>)).collect();
    let p_zeros: Vec<TokenStream> =
        param_fields.iter().zip(&param_len).map(|((f, _, _), n)| quote!(#f: ::std::vec![0.0; #n])).collect();
    let mut p_from = Vec::new();
    let mut p_to = Vec::new();
    let mut offset = 0usize;
    for ((f, t, dt), n) in param_fields.iter().zip(&param_len) {
        let end = offset + n;
        p_from.push(match dt {
            DType::F64 => quote!(#f: flat[#offset..#end].to_vec()),
            DType::F32 => quote!(#f: flat[#offset..#end].iter().map(|&v| v as #t).collect()),
        });
        p_to.push(match dt {
            DType::F64 => quote!(flat.extend_from_slice(&self.#f)),
            DType::F32 => quote!(flat.extend(self.#f.iter().map(|&v| f64::from(v)))),
        });
        offset = end;
    }
    let to_flat = if p_to.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        quote!(let mut flat = ::std::vec::Vec::with_capacity(Self::LEN); #(#p_to;)* flat)
    };
    let knobs_default = if knob_defaults.is_empty() { quote!(Knobs {}) } else { quote!(Knobs { #(#knob_defaults),* }) };

    Ok(quote! {
        /// The trainable parameters, one row-major vector per param.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Params { #(#p_decls,)* }

        impl Params {
            /// Number of scalars over all params.
            pub const LEN: usize = #total;

            pub fn zeros() -> Self {
                Params { #(#p_zeros,)* }
            }

            /// The params from one flat vector, in declaration order.
            pub fn from_flat(flat: &[f64]) -> ::std::result::Result<Self, #rt::RunError> {
                #rt::exec::check_len("params", flat.len(), Self::LEN)?;
                ::std::result::Result::Ok(Params { #(#p_from,)* })
            }

            /// The params as one flat vector, in declaration order.
            pub fn to_flat(&self) -> ::std::vec::Vec<f64> {
                #to_flat
            }
        }

        /// Event data, one row-major slice per input.
        #[derive(Clone, Copy, Debug)]
        pub struct Inputs<'a> { #(#input_fields,)* }

        /// Run-time scalars.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Knobs { #(#knob_fields,)* }

        impl ::std::default::Default for Knobs {
            fn default() -> Self {
                #knobs_default
            }
        }

        /// The named outputs, as the last entry point that computed them left them.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Outputs { #(#output_fields,)* }

        #(#items)*

        /// The compiled graph with its reusable buffers.
        #[derive(Debug)]
        pub struct Program {
            pub outputs: Outputs,
            #(#slot_fields,)*
            #(#extra_fields,)*
        }

        impl ::std::default::Default for Program {
            fn default() -> Self {
                Self::new()
            }
        }

        // Emitted expressions parenthesise every operation rather than track precedence.
        #[allow(unused_parens)]
        impl Program {
            pub fn new() -> Self {
                Program {
                    outputs: Outputs::default(),
                    #(#slot_inits,)*
                    #(#extra_inits,)*
                }
            }

            #(#methods)*

            /// Runs the entry point named `entry` with everything given by name and in `f64`
            /// (params flat, in declaration order), returning its outputs by name: for tools
            /// and tests that drive many generated programs alike.
            pub fn run_dynamic(
                &mut self,
                entry: &str,
                params: &[f64],
                inputs: &[(&str, &[f64])],
                knobs: &[(&str, f64)],
            ) -> ::std::result::Result<::std::vec::Vec<(&'static str, ::std::vec::Vec<f64>)>, #rt::RunError> {
                let params = Params::from_flat(params)?;
                #ignore_inputs
                #(#dyn_inputs)*
                let inputs = Inputs { #(#dyn_input_fields,)* #no_inputs };
                let #k_mut k = Knobs::default();
                for (name, v) in knobs {
                    match *name {
                        #(#dyn_knobs)*
                        other => {
                            let _ = v;
                            return ::std::result::Result::Err(#rt::RunError::new(other, "expected the name of a knob, found an unknown name"));
                        }
                    }
                }
                ::std::result::Result::Ok(match entry {
                    #(#dyn_arms)*
                    other => {
                        return ::std::result::Result::Err(#rt::RunError::new(other, "expected the name of an entry point, found an unknown name"));
                    }
                })
            }
        }
    })
}

/// The nodes of an entry, by kind, for reports and tests: how many got buffers, how many were
/// fused into loops, and the number of buffers after reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleStats {
    pub nodes: usize,
    pub computed: usize,
    pub fused: usize,
    pub buffers: usize,
}

/// The schedule statistics of computing the named outputs of `graph`.
pub fn schedule_stats(graph: &Graph, outputs: &[&str]) -> Result<ScheduleStats> {
    let outs: Vec<(String, NodeId)> = outputs
        .iter()
        .map(|o| {
            graph
                .output(o)
                .map(|id| (o.to_string(), id))
                .ok_or_else(|| codegen_error(format!("expected an output named `{o}`, found none")))
        })
        .collect::<Result<_>>()?;
    let plan = Plan::new(graph, &outs);
    let count = |k: plan::Kind| plan.kind.values().filter(|v| **v == k).count();
    Ok(ScheduleStats {
        nodes: plan.order.len(),
        computed: count(plan::Kind::Computed),
        fused: count(plan::Kind::Fused),
        buffers: plan.slots.iter().sum(),
    })
}
