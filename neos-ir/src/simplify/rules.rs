//! The rewrite rules, as a table: one rule per line, kebab-case names, guards as named
//! predicates. Every rule keeps the type of the e-class it rewrites (the analysis reports a
//! merge of differently typed classes as an error, and the property test would catch a rule
//! that changed values).
//!
//! Soundness notes, for the rules that need them:
//! - `x·0 → 0` and `x − x → 0` only fire for values the analysis proves finite, since
//!   NaN·0 and ∞ − ∞ are NaN.
//! - `exp(ln x) → x` needs x ≥ 0 (or NaN); `ln(exp x) → x` is exact wherever exp does not
//!   overflow or underflow, and more accurate where it does.
//! - Φ(−x) = 1 − Φ(x) is only used in the direction 1 − Φ(x) → Φ(−x): the other direction
//!   cancels catastrophically in the tails (1 − Φ(8) is 0 in f64, Φ(−8) is 6.2e−16), and the
//!   p-values of the analysis live in those tails. The same holds for 1 − σ(x) → σ(−x).
//! - The sign of a zero result may differ after `x + 0 → x` or `x·0 → 0`.
//! - Sums and products that overflow are outside the contract: reassociation alone changes
//!   them, and the analysis treats sums and products of finite values as finite.

use egg::{rewrite as rw, Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};

use super::analysis::{TypeAnalysis, EG};
use super::lang::{Attr, Expr, Num};
use crate::types::{DType, Shape};

type Rule = Rewrite<Expr, TypeAnalysis>;

fn var(name: &str) -> Var {
    name.parse().expect("rule variables in this file are well-formed")
}

/// `?v` is a uniform constant equal to `value`.
fn is(v: &str, value: f64) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.konst == Some(value)
}

/// `?v` is a uniform non-zero constant.
fn is_nonzero(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.konst.is_some_and(|c| c != 0.0)
}

/// `?v` has the type of the matched e-class, so the class may be replaced by it.
fn same_type(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, class, s| eg[s[v]].data.kind == eg[class].data.kind
}

/// `?v` is provably finite.
fn finite(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.finite
}

/// `?v` is ≥ 0 or NaN.
fn nonneg(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.nonneg
}

/// `?v` is a scalar (shape `[]`).
fn scalar(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.tensor().is_some_and(|(_, shape)| shape.is_scalar())
}

/// `?a` and `?b` broadcast to the matched class's shape without help, so an explicit
/// broadcast between them can go.
fn broadcasts_to_class(a: &str, b: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let (a, b) = (var(a), var(b));
    move |eg, class, s| {
        let shape = |id: Id| eg[id].data.tensor().map(|(_, sh)| sh.clone());
        match (shape(s[a]), shape(s[b]), shape(class)) {
            (Some(x), Some(y), Some(c)) => x.broadcast_with(&y).is_ok_and(|r| r == c),
            _ => false,
        }
    }
}

/// The permutations `?p` and `?q` compose to the identity.
fn inverse_perms(p: &str, q: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let (p, q) = (var(p), var(q));
    move |eg, _, s| match (eg[s[p]].data.attr(), eg[s[q]].data.attr()) {
        (Some(Attr::Axes(p)), Some(Attr::Axes(q))) => {
            p.len() == q.len() && (0..p.len()).all(|i| q.get(p[i]) == Some(&i))
        }
        _ => false,
    }
}

/// The attribute `?v` is the dtype `d`.
fn is_dtype(v: &str, d: DType) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.attr() == Some(&Attr::DType(d))
}

/// Replaces the matched class by a constant of its own type: `value` broadcast to its shape.
#[derive(Debug)]
struct Fill(f64);

impl Applier<Expr, TypeAnalysis> for Fill {
    fn apply_one(&self, eg: &mut EG, class: Id, _: &Subst, _: Option<&PatternAst<Expr>>, _: Symbol) -> Vec<Id> {
        let Some((dtype, shape)) = eg[class].data.tensor().map(|(d, s)| (d, s.clone())) else { return Vec::new() };
        let num = eg.add(Expr::Num(Num::new(self.0, dtype)));
        let filled = if shape == Shape::scalar() {
            num
        } else {
            let attr = eg.add(Expr::Attr(Attr::Shape(shape)));
            eg.add(Expr::Broadcast([attr, num]))
        };
        if eg.union(class, filled) {
            vec![filled]
        } else {
            Vec::new()
        }
    }
}

/// The rule table.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    let mut rules = vec![
        // Commutativity and associativity, so constants and common factors can meet.
        rw!("add-comm";       "(add ?a ?b)"                  => "(add ?b ?a)"),
        rw!("mul-comm";       "(mul ?a ?b)"                  => "(mul ?b ?a)"),
        rw!("add-assoc";      "(add (add ?a ?b) ?c)"         => "(add ?a (add ?b ?c))"),
        rw!("mul-assoc";      "(mul (mul ?a ?b) ?c)"         => "(mul ?a (mul ?b ?c))"),
        rw!("factor";         "(add (mul ?a ?b) (mul ?a ?c))" => "(mul ?a (add ?b ?c))"),
        // Neutral and absorbing elements.
        rw!("add-zero";       "(add ?a ?z)"   => "?a"          if is("?z", 0.0) if same_type("?a")),
        rw!("sub-zero";       "(sub ?a ?z)"   => "?a"          if is("?z", 0.0) if same_type("?a")),
        rw!("zero-sub";       "(sub ?z ?a)"   => "(neg ?a)"    if is("?z", 0.0) if same_type("?a")),
        rw!("mul-one";        "(mul ?a ?o)"   => "?a"          if is("?o", 1.0) if same_type("?a")),
        rw!("mul-minus-one";  "(mul ?a ?o)"   => "(neg ?a)"    if is("?o", -1.0) if same_type("?a")),
        rw!("mul-zero";       "(mul ?a ?z)"   => { Fill(0.0) } if is("?z", 0.0) if finite("?a")),
        rw!("div-one";        "(div ?a ?o)"   => "?a"          if is("?o", 1.0) if same_type("?a")),
        rw!("sub-self";       "(sub ?a ?a)"   => { Fill(0.0) } if finite("?a")),
        rw!("add-self";       "(add ?a ?a)"   => "(mul ?a 2)"),
        // Powers.
        rw!("pow-zero";       "(pow ?a ?p)"   => { Fill(1.0) } if is("?p", 0.0)),
        rw!("pow-one";        "(pow ?a ?p)"   => "?a"          if is("?p", 1.0) if same_type("?a")),
        rw!("pow-two";        "(pow ?a ?p)"   => "(mul ?a ?a)" if is("?p", 2.0) if same_type("?a")),
        rw!("pow-half";       "(pow ?a ?p)"   => "(sqrt ?a)"   if is("?p", 0.5) if same_type("?a") if nonneg("?a")),
        rw!("pow-minus-one";  "(pow ?a ?p)"   => "(recip ?a)"  if is("?p", -1.0) if same_type("?a")),
        rw!("sqrt-square";    "(mul (sqrt ?a) (sqrt ?a))" => "?a" if nonneg("?a")),
        // Negation and subtraction.
        rw!("neg-neg";        "(neg (neg ?a))"         => "?a"),
        rw!("neg-sub";        "(neg (sub ?a ?b))"      => "(sub ?b ?a)"),
        rw!("add-neg";        "(add ?a (neg ?b))"      => "(sub ?a ?b)"),
        rw!("sub-neg";        "(sub ?a (neg ?b))"      => "(add ?a ?b)"),
        rw!("neg-mul";        "(mul (neg ?a) ?b)"      => "(neg (mul ?a ?b))"),
        rw!("neg-neg-mul";    "(mul (neg ?a) (neg ?b))" => "(mul ?a ?b)"),
        // Division and reciprocals.
        rw!("div-recip";      "(div ?a ?b)"            => "(mul ?a (recip ?b))"),
        rw!("recip-div";      "(mul ?a (recip ?b))"    => "(div ?a ?b)"),
        rw!("recip-recip";    "(recip (recip ?a))"     => "?a"),
        // Exponentials and logarithms.
        rw!("exp-log";        "(exp (log ?a))"         => "?a" if nonneg("?a")),
        rw!("log-exp";        "(log (exp ?a))"         => "?a"),
        rw!("log-recip";      "(log (recip ?a))"       => "(neg (log ?a))"),
        rw!("exp-add";        "(mul (exp ?a) (exp ?b))" => "(exp (add ?a ?b))"),
        // ln σ(x) = −softplus(−x): cheaper, and finite where σ underflows to 0.
        rw!("log-sigmoid";    "(log (sigmoid ?a))"     => "(neg (softplus (neg ?a)))"),
        // Symmetries of the normal distribution and the logistic function.
        rw!("one-minus-normcdf"; "(sub ?o (normcdf ?a))" => "(normcdf (neg ?a))" if is("?o", 1.0) if same_type("?a")),
        rw!("one-minus-sigmoid"; "(sub ?o (sigmoid ?a))" => "(sigmoid (neg ?a))" if is("?o", 1.0) if same_type("?a")),
        rw!("normpdf-even";   "(normpdf (neg ?a))"     => "(normpdf ?a)"),
        rw!("abs-neg";        "(abs (neg ?a))"         => "(abs ?a)"),
        rw!("abs-abs";        "(abs (abs ?a))"         => "(abs ?a)"),
        rw!("relu-relu";      "(relu (relu ?a))"       => "(relu ?a)"),
        // Selection.
        rw!("select-same";    "(select ?c ?a ?a)"      => "?a" if same_type("?a")),
        rw!("select-true";    "(select ?c ?a ?b)"      => "?a" if is_nonzero("?c") if same_type("?a")),
        rw!("select-false";   "(select ?c ?a ?b)"      => "?b" if is("?c", 0.0) if same_type("?b")),
        // Shapes: broadcasts, reshapes, transposes, reductions, casts.
        rw!("broadcast-broadcast"; "(broadcast ?s (broadcast ?t ?a))" => "(broadcast ?s ?a)"),
        rw!("broadcast-noop";  "(broadcast ?s ?a)"     => "?a" if same_type("?a")),
        rw!("reshape-reshape"; "(reshape ?s (reshape ?t ?a))" => "(reshape ?s ?a)"),
        rw!("reshape-noop";    "(reshape ?s ?a)"       => "?a" if same_type("?a")),
        rw!("transpose-inverse"; "(transpose ?p (transpose ?q ?a))" => "?a" if inverse_perms("?p", "?q")),
        rw!("sum-neg";         "(sum ?x (neg ?a))"     => "(neg (sum ?x ?a))"),
        rw!("sum-scale";       "(sum ?x (mul ?a ?c))"  => "(mul (sum ?x ?a) ?c)" if scalar("?c")),
        rw!("cast-round-trip"; "(cast ?t (cast ?u ?a))" => "?a" if is_dtype("?u", DType::F64) if same_type("?a")),
    ];
    // Elementwise functions of a broadcast are broadcasts of the function: fewer evaluations.
    for op in ["neg", "abs", "sign", "exp", "log", "sqrt", "recip", "relu", "sigmoid", "tanh", "softplus",
               "normcdf", "normpdf", "lgamma"] {
        rules.push(generated(format!("{op}-of-broadcast"), format!("({op} (broadcast ?s ?a))"),
                             format!("(broadcast ?s ({op} ?a))"), None));
    }
    // Binary operations on two broadcasts to one shape are broadcasts of the operation, and a
    // broadcast feeding an operation whose other operand already has the full shape can go,
    // since elementwise e-nodes broadcast implicitly.
    for op in ["add", "sub", "mul", "div", "pow", "max", "min", "lt", "le", "gt", "ge", "eq", "ne"] {
        rules.push(generated(format!("{op}-of-broadcasts"), format!("({op} (broadcast ?s ?a) (broadcast ?s ?b))"),
                             format!("(broadcast ?s ({op} ?a ?b))"), None));
        rules.push(generated(format!("{op}-drop-broadcast-right"), format!("({op} ?a (broadcast ?s ?b))"),
                             format!("({op} ?a ?b)"), Some(("?a", "?b"))));
        rules.push(generated(format!("{op}-drop-broadcast-left"), format!("({op} (broadcast ?s ?a) ?b)"),
                             format!("({op} ?a ?b)"), Some(("?a", "?b"))));
    }
    rules
}

/// A rule from generated pattern text, optionally guarded by [`broadcasts_to_class`].
fn generated(name: String, lhs: String, rhs: String, guard: Option<(&str, &str)>) -> Rule {
    let lhs: Pattern<Expr> = lhs.parse().expect("generated patterns are well-formed");
    let rhs: Pattern<Expr> = rhs.parse().expect("generated patterns are well-formed");
    match guard {
        Some((a, b)) => rw!(name; lhs => rhs if broadcasts_to_class(a, b)),
        None => rw!(name; lhs => rhs),
    }
}
