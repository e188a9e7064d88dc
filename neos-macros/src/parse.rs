//! syn parsing of the `neos!` input into the [`ast`](crate::ast). Only malformed token
//! structure is an error here (and stops parsing, as a syntax error does in rustc); whether a
//! well-formed entry means anything is for `validate`, which reports every problem.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{braced, Attribute, Error, Expr, Ident, Result, Token, Visibility};

use crate::ast::{
    AnalysisAst, ChannelAst, InputAst, Item, KnobAst, LetAst, ModelAst, ModelItem, ModifierAst, ParamArgs, ParamAst,
    SampleAst, Setting,
};

impl Parse for AnalysisAst {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let kw = input.call(Ident::parse_any)?;
        if kw != "analysis" {
            return Err(Error::new(kw.span(), format!("expected `analysis Name {{ … }}`, found `{kw}`")));
        }
        let name: Ident = input.parse()?;
        let body;
        braced!(body in input);
        let mut items = Vec::new();
        while !body.is_empty() {
            items.push(parse_item(&body)?);
        }
        if !input.is_empty() {
            return Err(input.error("expected one analysis per `neos!` invocation, found more tokens after it"));
        }
        Ok(AnalysisAst { attrs, vis, name, items })
    }
}

fn parse_item(input: ParseStream<'_>) -> Result<Item> {
    if input.peek(Token![let]) {
        let let_token: Token![let] = input.parse()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        let semi: Token![;] = input.parse()?;
        let tokens = quote!(#let_token #name = #value #semi);
        return Ok(Item::Let(LetAst { name, value, tokens }));
    }
    let kw = input.call(Ident::parse_any)?;
    Ok(match kw.to_string().as_str() {
        "inputs" => {
            let body;
            braced!(body in input);
            let inputs = comma_separated(&body, parse_input)?;
            Item::Inputs { kw, inputs }
        }
        "knobs" => {
            let body;
            braced!(body in input);
            let knobs = comma_separated(&body, |i| {
                let name: Ident = i.parse()?;
                i.parse::<Token![=]>()?;
                Ok(KnobAst { name, value: i.parse()? })
            })?;
            Item::Knobs { kw, knobs }
        }
        "params" => {
            let body;
            braced!(body in input);
            let mut params = Vec::new();
            while !body.is_empty() {
                params.push(parse_param(&body)?);
                if !(body.is_empty() || eat::<Token![;]>(&body)? || eat::<Token![,]>(&body)?) {
                    return Err(body.error("expected `;` after a parameter"));
                }
            }
            Item::Params { kw, params }
        }
        "model" => {
            // `model from "workspace.json" { … }` splices the block into a pyhf workspace.
            let from = if input.peek(Ident::peek_any) {
                let word = input.call(Ident::parse_any)?;
                if word != "from" {
                    return Err(Error::new(
                        word.span(),
                        format!("expected `from \"workspace.json\"` or `{{`, found `{word}`"),
                    ));
                }
                Some(input.parse::<syn::LitStr>()?)
            } else {
                None
            };
            let body;
            braced!(body in input);
            let mut items = Vec::new();
            while !body.is_empty() {
                items.push(parse_model_item(&body)?);
            }
            Item::Model(ModelAst { kw, from, items })
        }
        "loss" => Item::Loss { kw, entries: entries_until_semicolon(input)? },
        "metrics" => Item::Metrics { kw, entries: entries_until_semicolon(input)? },
        "simplify" => {
            let body;
            braced!(body in input);
            Item::Simplify { kw, settings: comma_separated(&body, parse_setting)? }
        }
        _ => {
            skip_unknown(input)?;
            Item::Unknown { kw }
        }
    })
}

/// Skips what follows an unknown keyword: a braced block, or everything up to a `;`, so that
/// the sections after it are still checked.
fn skip_unknown(input: ParseStream<'_>) -> Result<()> {
    loop {
        if input.is_empty() {
            return Ok(());
        }
        if input.peek(syn::token::Brace) {
            let body;
            braced!(body in input);
            body.parse::<TokenStream>()?;
            return Ok(());
        }
        if eat::<Token![;]>(input)? {
            return Ok(());
        }
        input.parse::<TokenTree>()?;
    }
}

fn parse_input(input: ParseStream<'_>) -> Result<InputAst> {
    let name: Ident = input.parse()?;
    input.parse::<Token![:]>()?;
    let mut kind = input.call(Ident::parse_any)?;
    // `weighted events[n]`: the sample's events come with one weight each.
    let weighted = if kind == "weighted" && input.peek(Ident::peek_any) {
        let w = kind;
        kind = input.call(Ident::parse_any)?;
        Some(w)
    } else {
        None
    };
    let group = delimited(input, Delimiter::Bracket, "`[features]`")?;
    let features: Expr = syn::parse2(group.stream())?;
    // The user's own tokens, so that a diagnostic spans exactly `name: events[n]`.
    let tokens = quote!(#name #weighted #kind #group);
    Ok(InputAst { name, weighted: weighted.is_some(), kind, features, tokens })
}

fn parse_param(input: ParseStream<'_>) -> Result<ParamAst> {
    let name: Ident = input.parse()?;
    input.parse::<Token![=]>()?;
    let function = input.call(Ident::parse_any)?;
    let group = delimited(input, Delimiter::Parenthesis, "`(arguments)`")?;
    let tokens = quote!(#name #function #group);
    let args = (|body: ParseStream<'_>| parse_param_args(&function, body)).parse2(group.stream())?;
    Ok(ParamAst { name, function, args, tokens })
}

/// The arguments of a parameter's function.
fn parse_param_args(function: &Ident, body: ParseStream<'_>) -> Result<ParamArgs> {
    let args = if function == "mlp" {
        let mut sizes = vec![body.parse::<Expr>()?];
        while eat::<Token![=>]>(body)? {
            sizes.push(body.parse()?);
        }
        let rest = if eat::<Token![,]>(body)? { comma_separated(body, Expr::parse)? } else { Vec::new() };
        if !body.is_empty() {
            return Err(body.error("expected `=>` between layer sizes or `,` before the activations"));
        }
        ParamArgs::Mlp { sizes, rest }
    } else {
        ParamArgs::Exprs(comma_separated(body, Expr::parse)?)
    };
    Ok(args)
}

fn parse_model_item(input: ParseStream<'_>) -> Result<ModelItem> {
    let kw = input.call(Ident::parse_any)?;
    Ok(match kw.to_string().as_str() {
        "channel" => {
            let name: Ident = input.parse()?;
            let body;
            braced!(body in input);
            let mut samples = Vec::new();
            while !body.is_empty() {
                samples.push(parse_sample(&body)?);
                let _ = eat::<Token![,]>(&body)? || eat::<Token![;]>(&body)?;
            }
            ModelItem::Channel(ChannelAst { name, samples })
        }
        "poi" => {
            let name: Ident = input.parse()?;
            input.parse::<Token![;]>()?;
            ModelItem::Poi { kw, name }
        }
        "parameter" => {
            let name: Ident = input.parse()?;
            let body;
            braced!(body in input);
            ModelItem::Parameter { name, settings: comma_separated(&body, parse_setting)? }
        }
        "interpolation" => {
            let body;
            braced!(body in input);
            ModelItem::Interpolation { settings: comma_separated(&body, parse_setting)? }
        }
        "measurement" => {
            let name: syn::LitStr = input.parse()?;
            input.parse::<Token![;]>()?;
            ModelItem::Measurement { kw, name }
        }
        _ => {
            skip_unknown(input)?;
            ModelItem::Unknown { kw }
        }
    })
}

fn parse_sample(input: ParseStream<'_>) -> Result<SampleAst> {
    let kw = input.call(Ident::parse_any)?;
    if kw != "sample" {
        return Err(Error::new(kw.span(), format!("expected `sample name = yields {{ modifiers }}`, found `{kw}`")));
    }
    let name: Ident = input.parse()?;
    input.parse::<Token![=]>()?;
    // Without eager braces, `s { normfactor mu }` is the expression `s` and then its modifiers,
    // not a struct literal.
    let nominal = Expr::parse_without_eager_brace(input)?;
    let body;
    braced!(body in input);
    let modifiers = comma_separated(&body, parse_modifier)?;
    let tokens = quote!(#kw #name = #nominal);
    Ok(SampleAst { name, nominal, modifiers, tokens })
}

fn parse_modifier(input: ParseStream<'_>) -> Result<ModifierAst> {
    let kind = input.call(Ident::parse_any)?;
    let name: Ident = input.parse()?;
    let mut tokens = quote!(#kind #name);
    let args = if input.peek(syn::token::Paren) {
        let group = delimited(input, Delimiter::Parenthesis, "`(arguments)`")?;
        let args = (|body: ParseStream<'_>| comma_separated(body, Expr::parse)).parse2(group.stream())?;
        tokens.extend(quote!(#group));
        Some(args)
    } else {
        None
    };
    Ok(ModifierAst { kind, name, args, tokens })
}

fn parse_setting(input: ParseStream<'_>) -> Result<Setting> {
    let key = input.call(Ident::parse_any)?;
    input.parse::<Token![=]>()?;
    Ok(Setting { key, value: input.parse()? })
}

/// The next token tree, which must be a group with this delimiter.
fn delimited(input: ParseStream<'_>, delimiter: Delimiter, what: &str) -> Result<Group> {
    match input.parse::<TokenTree>()? {
        TokenTree::Group(g) if g.delimiter() == delimiter => Ok(g),
        other => Err(Error::new(other.span(), format!("expected {what}, found `{other}`"))),
    }
}

/// `a, b, c` with an optional trailing comma, to the end of the stream.
fn comma_separated<T>(input: ParseStream<'_>, item: impl Fn(ParseStream<'_>) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        out.push(item(input)?);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(out)
}

/// `a, b, c;`
fn entries_until_semicolon(input: ParseStream<'_>) -> Result<Vec<Expr>> {
    let mut out = vec![input.parse::<Expr>()?];
    while !eat::<Token![;]>(input)? {
        input.parse::<Token![,]>()?;
        out.push(input.parse()?);
    }
    Ok(out)
}

/// Consumes a token of type `T` if it is next.
fn eat<T: Parse + syn::token::Token>(input: ParseStream<'_>) -> Result<bool> {
    Ok(input.parse::<Option<T>>()?.is_some())
}

impl ToTokens for crate::ast::Setting {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let (key, value) = (&self.key, &self.value);
        tokens.extend(quote!(#key = #value));
    }
}
