//! The expansion: parse → validate → lower, differentiate and simplify (`neos_ir::lang`) →
//! generate code (`neos_ir::codegen`) → wrap it in the analysis type. On any error the
//! expansion is the errors as `compile_error!`s plus a stub of the analysis type with the same
//! API, so that code using the type reports nothing more.

use std::time::Instant;

use neos_ir::lang::{self, Compiled, Init};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, Visibility};

use crate::ast::AnalysisAst;
use crate::validate::validate;

/// The environment variable naming a directory to write the IR of every stage to, read when
/// the macro expands (see the crate docs).
pub const PRINT_IR_VAR: &str = "NEOS_PRINT_IR";

/// Expands one `neos!` invocation, writing the IR of each stage to the directory named by
/// [`PRINT_IR_VAR`] if it is set.
pub fn expand(input: TokenStream) -> TokenStream {
    let dir = std::env::var_os(PRINT_IR_VAR).map(std::path::PathBuf::from);
    expand_printing(input, dir.as_deref())
}

/// [`expand`], writing the IR of each stage to `print_dir` if given.
pub fn expand_printing(input: TokenStream, print_dir: Option<&std::path::Path>) -> TokenStream {
    let start = Instant::now();
    let (header, compiled) = match analyse(input) {
        Ok(done) => done,
        Err((header, errors)) => return fallback(header, errors),
    };
    let compiled_at = start.elapsed();
    let result = generate(&header, &compiled).map(|code| {
        // A workspace the model is spliced into is part of the analysis: the crate is built
        // again when it changes.
        let files = header.files.iter();
        quote!(#code #(const _: &[u8] = ::core::include_bytes!(#files);)*)
    });
    let generated_at = start.elapsed();
    let printed = match print_dir {
        Some(dir) => print_stages(dir, &header.name, &compiled, compiled_at.as_secs_f64(), generated_at.as_secs_f64()),
        None => Ok(()),
    };
    match (result, printed) {
        (Ok(code), Ok(())) => code,
        (Err(e), _) | (Ok(_), Err(e)) => fallback(Some(header), vec![e]),
    }
}

/// Everything before code generation: parse, validate, lower, differentiate, simplify. On
/// failure, every error and (if the header parsed) what the stub needs.
#[allow(clippy::result_large_err)]
pub fn analyse(input: TokenStream) -> Result<(Header, Compiled), (Option<Header>, Vec<syn::Error>)> {
    let ast: AnalysisAst = match syn::parse2(input.clone()) {
        Ok(ast) => ast,
        Err(e) => return Err((syn::parse2::<Header>(input).ok(), vec![e])),
    };
    let files = ast
        .items
        .iter()
        .filter_map(|i| if let crate::ast::Item::Model(m) = i { m.from.as_ref() } else { None })
        .map(crate::validate::resolve_model_path)
        .filter(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let header = Header { attrs: ast.attrs.clone(), vis: ast.vis.clone(), name: ast.name.clone(), files };
    let validated = match validate(&ast) {
        Ok(v) => v,
        Err(errors) => return Err((Some(header), errors)),
    };
    match lang::compile(&validated.analysis, &validated.limits) {
        Ok(c) => Ok((header, c)),
        Err(e) => {
            let errors = e.diagnostics.iter().map(|d| validated.spans.error(d.at, &d.message)).collect();
            Err((Some(header), errors))
        }
    }
}

/// The analysis's attributes, visibility and name: all the stub needs.
pub struct Header {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    /// The workspace files the model is spliced into, to rebuild when they change.
    files: Vec<String>,
}

impl Parse for Header {
    /// Reads `#[…] vis analysis Name` and ignores the rest, so that the stub can be emitted
    /// even when the body does not parse.
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let _kw: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let name = input.parse()?;
        input.parse::<TokenStream>()?;
        Ok(Header { attrs, vis, name, files: Vec::new() })
    }
}

/// The errors, and a stub of the analysis type with the API of a real one whose methods are
/// never reached (the crate does not compile), in the manner of thiserror's fallback.
fn fallback(header: Option<Header>, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    let Some(Header { attrs, vis, name, .. }) = header else {
        return quote!(#(#errors)*);
    };
    let unreachable = quote!(::core::unreachable!("the neos! analysis did not compile"));
    let signatures = api_signatures();
    let trait_impl = trait_impl(&name, &unreachable, &unreachable, &unreachable, &unreachable, &unreachable);
    quote! {
        #(#errors)*
        #(#attrs)*
        #vis struct #name {
            _stub: (),
        }
        #[allow(dead_code, unused_variables, clippy::all)]
        impl #name {
            pub fn new() -> Self {
                #unreachable
            }
            #(#signatures { #unreachable })*
        }
        impl ::core::default::Default for #name {
            fn default() -> Self {
                #unreachable
            }
        }
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::stringify!(#name))
            }
        }
        #trait_impl
    }
}

/// Paths the generated code uses.
fn run_error() -> TokenStream {
    quote!(::neos::__private::runtime::RunError)
}
fn view2() -> TokenStream {
    quote!(::neos::__private::ndarray::ArrayView2)
}

/// The signatures of the methods every analysis type has (the stub gives them bodies that are
/// never reached).
fn api_signatures() -> Vec<TokenStream> {
    let (e, v) = (run_error(), view2());
    vec![
        quote!(pub fn init(&self, seed: u64) -> ::std::vec::Vec<f64>),
        quote!(pub fn loss(&mut self, objective: &str, params: &[f64], batch: &[#v<'_, f64>], knobs: &[(&str, f64)]) -> ::core::result::Result<f64, #e>),
        quote!(pub fn value_and_grad(&mut self, objective: &str, params: &[f64], batch: &[#v<'_, f64>], knobs: &[(&str, f64)]) -> ::core::result::Result<(f64, ::std::vec::Vec<f64>), #e>),
        quote!(pub fn metrics(&mut self, params: &[f64], batch: &[#v<'_, f64>], knobs: &[(&str, f64)]) -> ::core::result::Result<::std::vec::Vec<(&'static str, f64)>, #e>),
        quote!(pub fn values(&mut self, params: &[f64], batch: &[#v<'_, f64>], knobs: &[(&str, f64)]) -> ::core::result::Result<::std::vec::Vec<(&'static str, ::std::vec::Vec<f64>)>, #e>),
        quote!(pub fn network(&mut self, network: &str, params: &[f64], points: #v<'_, f64>) -> ::core::result::Result<::std::vec::Vec<f64>, #e>),
        quote!(pub fn workspace(&mut self, params: &[f64], batch: &[#v<'_, f64>], knobs: &[(&str, f64)]) -> ::core::result::Result<::std::string::String, #e>),
        quote!(pub fn edges(&mut self, params: &[f64]) -> ::core::result::Result<::std::vec::Vec<(&'static str, ::std::vec::Vec<f64>)>, #e>),
        quote!(pub fn samples(&self) -> &'static [(&'static str, usize)]),
        quote!(pub fn save_params(&self, params: &[f64], path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), #e>),
        quote!(pub fn load_params(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<::std::vec::Vec<f64>, #e>),
        quote!(pub fn sample_size_knobs(&self) -> &'static [::core::option::Option<&'static str>]),
        quote!(pub fn objectives(&self) -> &'static [&'static str]),
        quote!(pub fn metric_names(&self) -> &'static [&'static str]),
        quote!(pub fn param_count(&self) -> usize),
    ]
}

/// The trainer's trait, implemented through the inherent methods (or, for the stub, bodies
/// that are never reached).
fn trait_impl(
    name: &Ident,
    value_and_grad: &TokenStream,
    metrics: &TokenStream,
    samples: &TokenStream,
    report: &TokenStream,
    list: &TokenStream,
) -> TokenStream {
    let (e, v) = (run_error(), view2());
    quote! {
        #[allow(unreachable_code, unused_variables)]
        impl ::neos::__private::runtime::train::Analysis for #name {
            fn samples(&self) -> ::std::vec::Vec<(::std::string::String, usize)> {
                #samples
            }
            fn param_count(&self) -> usize {
                #name::param_count(self)
            }
            fn sample_size_knobs(&self) -> ::std::vec::Vec<::core::option::Option<::std::string::String>> {
                #name::sample_size_knobs(self).iter().map(|k| k.map(::std::string::ToString::to_string)).collect()
            }
            fn init(&self, seed: u64) -> ::std::vec::Vec<f64> {
                #name::init(self, seed)
            }
            fn objectives(&self) -> ::std::vec::Vec<::std::string::String> {
                let list: &[&str] = #name::objectives(self);
                #list
            }
            fn value_and_grad(
                &mut self,
                objective: &str,
                params: &[f64],
                batch: &[#v<'_, f64>],
                knobs: &[(::std::string::String, f64)],
            ) -> ::core::result::Result<(f64, ::std::vec::Vec<f64>), #e> {
                #value_and_grad
            }
            fn metric_names(&self) -> ::std::vec::Vec<::std::string::String> {
                let list: &[&str] = #name::metric_names(self);
                #list
            }
            fn metrics(
                &mut self,
                params: &[f64],
                batch: &[#v<'_, f64>],
                knobs: &[(::std::string::String, f64)],
            ) -> ::core::result::Result<::std::vec::Vec<f64>, #e> {
                #metrics
            }
            fn report(
                &mut self,
                params: &[f64],
            ) -> ::core::result::Result<::std::vec::Vec<(::std::string::String, ::std::vec::Vec<f64>)>, #e> {
                #report
            }
        }
    }
}

/// Writes the IR of each stage, the simplifier's report and the expansion's timings to `dir`.
fn print_stages(
    dir: &std::path::Path,
    name: &Ident,
    compiled: &Compiled,
    compile_s: f64,
    total_s: f64,
) -> syn::Result<()> {
    let fail = |e: std::io::Error| {
        syn::Error::new(
            name.span(),
            format!("{PRINT_IR_VAR}: expected a writable directory {}, found: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    for (stage, text) in compiled.printed() {
        std::fs::write(dir.join(format!("{name}.{stage}.ir")), text).map_err(fail)?;
    }
    let report = format!(
        "lower, differentiate, simplify: {compile_s:.3} s\nwhole expansion: {total_s:.3} s\nsimplify: {}\n",
        compiled.report
    );
    std::fs::write(dir.join(format!("{name}.report.txt")), report).map_err(fail)
}

/// The generated module and the analysis type around it.
fn generate(header: &Header, compiled: &Compiled) -> syn::Result<TokenStream> {
    let Header { attrs, vis, name, .. } = header;
    let lowered = &compiled.lowered;
    let codegen_error =
        |e: neos_ir::IrError| syn::Error::new(name.span(), format!("generating code for `{name}`: {e}"));
    let entries: Vec<neos_ir::codegen::Entry> =
        lowered.entries().into_iter().map(|(name, outputs)| neos_ir::codegen::Entry { name, outputs }).collect();
    let code = neos_ir::codegen::emit(&compiled.simplified, &entries).map_err(codegen_error)?;
    let snake = snake_case(&name.to_string());
    let module = format_ident!("__neos_{}", snake);
    let mut net_modules = Vec::new();
    let mut net_codes = Vec::new();
    let mut net_fields = Vec::new();
    for n in &compiled.networks {
        let entry = neos_ir::codegen::Entry { name: "apply".into(), outputs: vec!["y".into()] };
        net_codes.push(neos_ir::codegen::emit(&n.graph, &[entry]).map_err(codegen_error)?);
        net_modules.push(format_ident!("__neos_{}_{}", snake, n.name));
        net_fields.push(format_ident!("network_{}", n.name));
    }
    let (e, view) = (run_error(), view2());
    let name_str = name.to_string();

    let sample_names: Vec<&str> = lowered.inputs.iter().map(|(n, _)| n.as_str()).collect();
    // A weighted sample's array carries its weights as a last column.
    let sample_features: Vec<usize> =
        lowered.inputs.iter().zip(&lowered.weights).map(|((_, f), w)| f + usize::from(w.is_some())).collect();
    let sample_size_knobs: Vec<TokenStream> = lowered
        .sample_knobs
        .iter()
        .map(|k| match k {
            Some(k) => quote!(::core::option::Option::Some(#k)),
            None => quote!(::core::option::Option::None),
        })
        .collect();
    let knob_names: Vec<&str> = lowered.knobs.iter().map(|(n, _)| n.as_str()).collect();
    let knob_idents: Vec<Ident> = knob_names.iter().map(|n| format_ident!("{}", n)).collect();
    let objectives = &lowered.objectives;
    let metrics = &lowered.metrics;
    let param_count = lowered.param_count();
    let param_names: Vec<&str> = lowered.params.iter().map(|p| p.name.as_str()).collect();
    let param_shapes: Vec<TokenStream> = lowered
        .params
        .iter()
        .map(|p| {
            let dims = &p.shape;
            quote!(#(#dims),*)
        })
        .collect();
    let inits: Vec<TokenStream> = lowered.params.iter().map(|p| init_tokens(&p.init, p.len())).collect();

    // Inputs from the batch: one contiguous row-major slice per sample, and for a weighted
    // sample its features and its weights apart.
    let input_fields: Vec<Ident> = sample_names.iter().map(|n| format_ident!("{}", n)).collect();
    let input_index: Vec<usize> = (0..input_fields.len()).collect();
    let weighted: Vec<bool> = lowered.weights.iter().map(Option::is_some).collect();
    let weight_idents: Vec<Ident> = lowered.weights.iter().flatten().map(|w| format_ident!("{}", w)).collect();
    let weight_fields: Vec<TokenStream> = lowered
        .weights
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let field = format_ident!("{}", w.as_ref()?);
            Some(quote!(#field: &weights[#i],))
        })
        .collect();
    // A program of a graph without event inputs still takes `Inputs`, with a marker field.
    let no_inputs = if input_fields.is_empty() { quote!(_none: ::std::marker::PhantomData) } else { quote!() };
    let with_inputs = quote! {
        fn with_inputs<R>(
            batch: &[#view<'_, f64>],
            run: impl ::core::ops::FnOnce(&#module::Inputs<'_>) -> ::core::result::Result<R, #e>,
        ) -> ::core::result::Result<R, #e> {
            const SAMPLES: &[(&str, usize)] = &[#((#sample_names, #sample_features)),*];
            if batch.len() != SAMPLES.len() {
                return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                    "expected one array per sample ({}), found {}", SAMPLES.len(), batch.len()
                )));
            }
            // Samples have sizes of their own; each needs events, since its histograms are
            // normalised by its number of events.
            for (view, (sample, features)) in batch.iter().zip(SAMPLES) {
                if view.ncols() != *features {
                    return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                        "sample `{}`: expected {} features per event, found {}", sample, features, view.ncols()
                    )));
                }
                if view.nrows() == 0 {
                    return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                        "sample `{}`: expected at least one event, found none", sample
                    )));
                }
            }
            // Views that are not contiguous row-major are copied once; a weighted sample's
            // features and weights (its last column) are copied apart.
            const WEIGHTED: &[bool] = &[#(#weighted),*];
            let owned: ::std::vec::Vec<::std::borrow::Cow<'_, [f64]>> = batch
                .iter()
                .zip(WEIGHTED)
                .map(|(v, &weighted)| match (weighted, v.as_slice()) {
                    (false, ::core::option::Option::Some(s)) => ::std::borrow::Cow::Borrowed(s),
                    (false, ::core::option::Option::None) => ::std::borrow::Cow::Owned(v.iter().copied().collect()),
                    (true, _) => ::std::borrow::Cow::Owned(
                        v.rows().into_iter().flat_map(|r| r.into_iter().take(r.len() - 1).copied()).collect(),
                    ),
                })
                .collect();
            let weights: ::std::vec::Vec<::std::vec::Vec<f64>> = batch
                .iter()
                .zip(WEIGHTED)
                .map(|(v, &weighted)| if weighted { v.column(v.ncols() - 1).to_vec() } else { ::std::vec::Vec::new() })
                .collect();
            let inputs = #module::Inputs { #(#input_fields: &owned[#input_index],)* #(#weight_fields)* };
            run(&inputs)
        }
    };

    let loss_arms = objectives.iter().map(|o| {
        let entry = format_ident!("loss_{}", o);
        let field = format_ident!("{}", lang::loss_output(o));
        quote!(#o => Self::scalar(&program.#entry(&params, inputs, &knobs)?.#field, #o))
    });
    let grad_arms = objectives.iter().map(|o| {
        let entry = format_ident!("value_and_grad_{}", o);
        let loss = format_ident!("{}", lang::loss_output(o));
        let grads = lowered.params.iter().map(|p| format_ident!("{}", lang::grad_output(o, &p.name)));
        quote!(#o => {
            let out = program.#entry(&params, inputs, &knobs)?;
            let mut grad = ::std::vec::Vec::with_capacity(#param_count);
            #(grad.extend_from_slice(&out.#grads);)*
            ::core::result::Result::Ok((Self::scalar(&out.#loss, #o)?, grad))
        })
    });
    let metric_fields: Vec<Ident> = metrics.iter().map(|m| format_ident!("{}", lang::metric_output(m))).collect();
    let value_names: Vec<&str> =
        lowered.values.iter().map(String::as_str).chain(lowered.edges.iter().map(|e| e.name.as_str())).collect();
    let value_fields: Vec<Ident> = lowered
        .values
        .iter()
        .map(|v| format_ident!("{}", lang::value_output(v)))
        .chain(lowered.edges.iter().map(|e| format_ident!("{}", lang::edges_output(&e.name))))
        .collect();
    let export_fields: Vec<Ident> = lowered.export.outputs.iter().map(|o| format_ident!("{}", o)).collect();
    let template = match &lowered.export.template {
        Ok(t) => quote!(::core::result::Result::Ok(#t)),
        Err(why) => quote!(::core::result::Result::Err(#why)),
    };
    let net_names: Vec<&str> = compiled.networks.iter().map(|n| n.name.as_str()).collect();
    let net_inputs: Vec<usize> = compiled.networks.iter().map(|n| n.inputs).collect();
    let edges_names: Vec<&str> = lowered.edges.iter().map(|e| e.name.as_str()).collect();
    let edges_fields: Vec<Ident> =
        lowered.edges.iter().map(|e| format_ident!("{}", lang::edges_output(&e.name))).collect();
    let all_objectives = objectives.join(", ");
    let all_knobs = knob_names.join(", ");
    let all_networks = net_names.join(", ");
    let unknown_objective = quote! {
        other => ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
            "expected one of the objectives ({}), found `{}`", #all_objectives, other
        )))
    };
    let doc_samples = format!(
        "The samples of `{name}`, in declaration order, with their numbers of columns: the features, and for a \
         weighted sample its weight as a last column."
    );

    let list = quote!(list.iter().map(|s| ::std::string::ToString::to_string(s)).collect());
    let trait_impl = trait_impl(
        name,
        &quote! {
            let knobs: ::std::vec::Vec<(&str, f64)> = knobs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            #name::value_and_grad(self, objective, params, batch, &knobs)
        },
        &quote! {
            let knobs: ::std::vec::Vec<(&str, f64)> = knobs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            ::core::result::Result::Ok(#name::metrics(self, params, batch, &knobs)?.into_iter().map(|(_, v)| v).collect())
        },
        &quote!(#name::samples(self).iter().map(|(n, f)| (::std::string::ToString::to_string(n), *f)).collect()),
        &quote!(::core::result::Result::Ok(#name::edges(self, params)?.into_iter().map(|(n, v)| (::std::string::ToString::to_string(n), v)).collect())),
        &list,
    );

    Ok(quote! {
        #[doc(hidden)]
        #[allow(warnings, clippy::all, clippy::pedantic, missing_debug_implementations)]
        #vis mod #module {
            #code
        }
        #(
            #[doc(hidden)]
            #[allow(warnings, clippy::all, clippy::pedantic, missing_debug_implementations)]
            #vis mod #net_modules {
                #net_codes
            }
        )*

        #(#attrs)*
        #vis struct #name {
            program: #module::Program,
            #(#net_fields: #net_modules::Program,)*
        }

        impl ::core::default::Default for #name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#name_str)
            }
        }

        #[allow(dead_code, clippy::all)]
        impl #name {
            /// The parameter leaves, in the order of the flat parameter vector, with their shapes.
            pub const PARAMS: &'static [(&'static str, &'static [usize])] =
                &[#((#param_names, &[#param_shapes])),*];

            pub fn new() -> Self {
                Self { program: #module::Program::new(), #(#net_fields: #net_modules::Program::new(),)* }
            }

            /// Writes `params` to `path` with each parameter's name and shape (JSON, format
            /// `neos-parameters-1`; see `neos::train::save_params`), for other tools and for
            /// [`Self::load_params`].
            pub fn save_params(
                &self,
                params: &[f64],
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<(), #e> {
                ::neos::__private::runtime::train::save_params(path, #name_str, Self::PARAMS, params)
            }

            /// Reads parameters written by [`Self::save_params`], checking every name, shape and
            /// value against this analysis.
            pub fn load_params(
                &self,
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<::std::vec::Vec<f64>, #e> {
                ::neos::__private::runtime::train::load_params(path, #name_str, Self::PARAMS)
            }

            #[doc = #doc_samples]
            pub fn samples(&self) -> &'static [(&'static str, usize)] {
                &[#((#sample_names, #sample_features)),*]
            }

            /// Per sample, the knob that takes the number of events of the whole sample when
            /// the events given are a part of it (a batch, a test set); `None` where the
            /// analysis does not need it. The trainer sets these itself.
            pub fn sample_size_knobs(&self) -> &'static [::core::option::Option<&'static str>] {
                &[#(#sample_size_knobs),*]
            }

            /// The objectives that can be trained, the first being the default.
            pub fn objectives(&self) -> &'static [&'static str] {
                &[#(#objectives),*]
            }

            /// The names of the reported metrics.
            pub fn metric_names(&self) -> &'static [&'static str] {
                &[#(#metrics),*]
            }

            /// The number of parameters, flattened.
            pub fn param_count(&self) -> usize {
                #param_count
            }

            /// Parameters drawn from `seed` (stax's inits: glorot-normal weights, normal(1e-2)
            /// biases; the declared values otherwise); the same seed gives the same bits.
            pub fn init(&self, seed: u64) -> ::std::vec::Vec<f64> {
                ::neos::__private::runtime::init::init(&[#(#inits),*], seed)
            }

            fn knobs(knobs: &[(&str, f64)]) -> ::core::result::Result<#module::Knobs, #e> {
                #[allow(unused_mut)]
                let mut out = #module::Knobs::default();
                for (knob, value) in knobs {
                    match *knob {
                        #(#knob_names => out.#knob_idents = *value,)*
                        other => {
                            return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                                "expected one of the knobs ({}), found `{}`", #all_knobs, other
                            )))
                        }
                    }
                }
                ::core::result::Result::Ok(out)
            }

            fn params(params: &[f64]) -> ::core::result::Result<#module::Params, #e> {
                if params.len() != #param_count {
                    return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                        "expected {} parameters, found {}", #param_count, params.len()
                    )));
                }
                #module::Params::from_flat(params)
            }

            fn scalar(values: &[f64], what: &str) -> ::core::result::Result<f64, #e> {
                match values {
                    [v] => ::core::result::Result::Ok(*v),
                    other => ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                        "`{}`: expected one value, found {}", what, other.len()
                    ))),
                }
            }

            #with_inputs

            /// The value of `objective` on a batch (one `[events, features]` array per sample,
            /// each with its own number of events); knobs not given take their defaults.
            pub fn loss(
                &mut self,
                objective: &str,
                params: &[f64],
                batch: &[#view<'_, f64>],
                knobs: &[(&str, f64)],
            ) -> ::core::result::Result<f64, #e> {
                let (params, knobs) = (Self::params(params)?, Self::knobs(knobs)?);
                let program = &mut self.program;
                Self::with_inputs(batch, |inputs| match objective {
                    #(#loss_arms,)*
                    #unknown_objective
                })
            }

            /// The value of `objective` and its gradient with respect to the flat parameters.
            pub fn value_and_grad(
                &mut self,
                objective: &str,
                params: &[f64],
                batch: &[#view<'_, f64>],
                knobs: &[(&str, f64)],
            ) -> ::core::result::Result<(f64, ::std::vec::Vec<f64>), #e> {
                let (params, knobs) = (Self::params(params)?, Self::knobs(knobs)?);
                let program = &mut self.program;
                Self::with_inputs(batch, |inputs| match objective {
                    #(#grad_arms,)*
                    #unknown_objective
                })
            }

            /// Every metric, by name.
            pub fn metrics(
                &mut self,
                params: &[f64],
                batch: &[#view<'_, f64>],
                knobs: &[(&str, f64)],
            ) -> ::core::result::Result<::std::vec::Vec<(&'static str, f64)>, #e> {
                let (params, knobs) = (Self::params(params)?, Self::knobs(knobs)?);
                let program = &mut self.program;
                Self::with_inputs(batch, |inputs| {
                    let out = program.metrics(&params, inputs, &knobs)?;
                    ::core::result::Result::Ok(::std::vec![#((#metrics, Self::scalar(&out.#metric_fields, #metrics)?)),*])
                })
            }

            /// The value of every `let` (yields per sample, network outputs…) and the bin
            /// edges, by name.
            pub fn values(
                &mut self,
                params: &[f64],
                batch: &[#view<'_, f64>],
                knobs: &[(&str, f64)],
            ) -> ::core::result::Result<::std::vec::Vec<(&'static str, ::std::vec::Vec<f64>)>, #e> {
                let (params, knobs) = (Self::params(params)?, Self::knobs(knobs)?);
                let program = &mut self.program;
                Self::with_inputs(batch, |inputs| {
                    let out = program.values(&params, inputs, &knobs)?;
                    ::core::result::Result::Ok(::std::vec![#((#value_names, out.#value_fields.clone())),*])
                })
            }

            /// The analysis with these parameters as a pyhf JSON workspace (schema 1.0.0), its
            /// histograms computed on `batch` with `knobs` (pass the test knobs, e.g. a
            /// bandwidth of 1e-8, for hard histograms): every channel, sample, modifier and
            /// parameter setting of the model, one measurement named after the analysis, and as
            /// observations the background-only Asimov data that `cls` is computed on. `neos
            /// cls` and `pyhf cls` read it; their observed CLs at μ = 1 is this analysis's `cls`
            /// metric on the same events.
            pub fn workspace(
                &mut self,
                params: &[f64],
                batch: &[#view<'_, f64>],
                knobs: &[(&str, f64)],
            ) -> ::core::result::Result<::std::string::String, #e> {
                let template: ::core::result::Result<&str, &str> = #template;
                let template = template.map_err(|why| #e::new(#name_str, why))?;
                let (params, knobs) = (Self::params(params)?, Self::knobs(knobs)?);
                let program = &mut self.program;
                Self::with_inputs(batch, |inputs| {
                    let out = program.values(&params, inputs, &knobs)?;
                    ::neos::__private::ir::histfactory::fill_template(template, &[#(&out.#export_fields[..]),*])
                        .map_err(|why| #e::new(#name_str, why))
                })
            }

            /// A network's output on `points` (`[n, inputs]`), e.g. on a grid for a plot.
            pub fn network(
                &mut self,
                network: &str,
                params: &[f64],
                points: #view<'_, f64>,
            ) -> ::core::result::Result<::std::vec::Vec<f64>, #e> {
                let owned;
                let x: &[f64] = match points.as_slice() {
                    ::core::option::Option::Some(s) => s,
                    ::core::option::Option::None => {
                        owned = points.iter().copied().collect::<::std::vec::Vec<f64>>();
                        &owned
                    }
                };
                match network {
                    #(
                        #net_names => {
                            if points.ncols() != #net_inputs {
                                return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                                    "network `{}`: expected points with {} features, found {}", network, #net_inputs, points.ncols()
                                )));
                            }
                            if params.len() != #param_count {
                                return ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                                    "expected {} parameters, found {}", #param_count, params.len()
                                )));
                            }
                            let params = #net_modules::Params::from_flat(params)?;
                            let knobs = #net_modules::Knobs::default();
                            let out = self.#net_fields.apply(&params, &#net_modules::Inputs { x }, &knobs)?;
                            ::core::result::Result::Ok(out.y.clone())
                        }
                    )*
                    other => ::core::result::Result::Err(#e::new(#name_str, ::std::format!(
                        "expected one of the networks ({}), found `{}`", #all_networks, other
                    ))),
                }
            }

            /// The bin edges of every bin-edges parameter, repaired as training sees them (the
            /// program's own edges, which need no events).
            pub fn edges(
                &mut self,
                params: &[f64],
            ) -> ::core::result::Result<::std::vec::Vec<(&'static str, ::std::vec::Vec<f64>)>, #e> {
                let params = Self::params(params)?;
                let inputs = #module::Inputs { #(#input_fields: &[],)* #(#weight_idents: &[],)* #no_inputs };
                let out = self.program.edges(&params, &inputs, &#module::Knobs::default())?;
                ::core::result::Result::Ok(::std::vec![#((#edges_names, out.#edges_fields.clone())),*])
            }
        }

        #trait_impl
    })
}

/// `Init` as a runtime initialiser.
fn init_tokens(init: &Init, len: usize) -> TokenStream {
    let path = quote!(::neos::__private::runtime::init::Init);
    match init {
        Init::Constant(value) => quote!(#path::Constant { value: #value, len: #len }),
        Init::Values(v) => quote!(#path::Values(&[#(#v),*])),
        Init::Normal { std } => quote!(#path::Normal { std: #std, len: #len }),
        Init::GlorotNormal { fan_in, fan_out } => quote!(#path::GlorotNormal { fan_in: #fan_in, fan_out: #fan_out }),
    }
}

/// `BlobsWide` → `blobs_wide`, for module names.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
