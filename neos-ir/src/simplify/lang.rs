//! The e-graph language: one e-node per IR operation, with attributes (shapes, axes, ranges,
//! dtypes) as leaf children so that rules can bind them to variables, weakly typed scalar
//! constants, and references to the IR's leaves.
//!
//! Elementwise e-nodes broadcast their operands like NumPy (the IR requires equal shapes and
//! explicit broadcast nodes); this lets a rule drop a broadcast of a scalar and meet a
//! constant directly, as in `(mul ?x 1)`. Rules that change operand shapes are guarded so that
//! the shape of every e-class stays the same.

use std::fmt;
use std::str::FromStr;

use egg::{define_language, Id};

use crate::types::{DType, Shape};

define_language! {
    /// An e-node.
    pub enum Expr {
        "neg" = Neg(Id),
        "abs" = Abs(Id),
        "sign" = Sign(Id),
        "exp" = Exp(Id),
        "log" = Log(Id),
        "sqrt" = Sqrt(Id),
        "recip" = Recip(Id),
        "relu" = Relu(Id),
        "sigmoid" = Sigmoid(Id),
        "tanh" = Tanh(Id),
        "softplus" = Softplus(Id),
        "normcdf" = NormCdf(Id),
        "normpdf" = NormPdf(Id),
        "lgamma" = Lgamma(Id),
        "polygamma" = Polygamma([Id; 2]),
        "add" = Add([Id; 2]),
        "sub" = Sub([Id; 2]),
        "mul" = Mul([Id; 2]),
        "div" = Div([Id; 2]),
        "pow" = Pow([Id; 2]),
        "max" = Max([Id; 2]),
        "min" = Min([Id; 2]),
        "lt" = Lt([Id; 2]),
        "le" = Le([Id; 2]),
        "gt" = Gt([Id; 2]),
        "ge" = Ge([Id; 2]),
        "eq" = Eq([Id; 2]),
        "ne" = Ne([Id; 2]),
        "select" = Select([Id; 3]),
        "matmul" = MatMul([Id; 2]),
        "transpose" = Transpose([Id; 2]),
        "broadcast" = Broadcast([Id; 2]),
        "reshape" = Reshape([Id; 2]),
        "slice" = Slice([Id; 2]),
        "pad" = Pad([Id; 2]),
        "concat" = Concat(Box<[Id]>),
        "sum" = Sum([Id; 2]),
        "reduce_max" = ReduceMax([Id; 2]),
        "cast" = Cast([Id; 2]),
        "hist" = Hist([Id; 4]),
        "call" = Call(Box<[Id]>),
        Num(Num),
        Attr(Attr),
        Leaf(Leaf),
    }
}

impl Expr {
    /// Whether the first child is not a tensor operand but the operation's attribute (or, for
    /// a call, its custom operation).
    pub fn has_head(&self) -> bool {
        matches!(
            self,
            Expr::Polygamma(_)
                | Expr::Transpose(_)
                | Expr::Broadcast(_)
                | Expr::Reshape(_)
                | Expr::Slice(_)
                | Expr::Pad(_)
                | Expr::Concat(_)
                | Expr::Sum(_)
                | Expr::ReduceMax(_)
                | Expr::Cast(_)
                | Expr::Hist(_)
                | Expr::Call(_)
        )
    }
}

/// A scalar constant, stored by its bits so that it can be hashed and ordered (so −0.0 and
/// 0.0, and every NaN payload, stay distinct), with its dtype. A constant without a dtype is
/// *weakly typed*: it takes the dtype of the expression it is used in, as Python scalars do in
/// jax; the literals in rule right-hand sides are weak.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Num {
    bits: u64,
    pub dtype: Option<DType>,
}

impl Num {
    pub fn new(v: f64, dtype: Option<DType>) -> Self {
        let v = dtype.map_or(v, |d| d.round(v));
        Num { bits: v.to_bits(), dtype }
    }

    pub fn value(self) -> f64 {
        f64::from_bits(self.bits)
    }
}

impl fmt::Debug for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dtype {
            Some(d) => write!(f, "{:?}{d}", self.value()),
            None => write!(f, "{:?}", self.value()),
        }
    }
}

impl FromStr for Num {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only plain decimal numbers: names such as `inf` are left to other leaf kinds.
        if !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
            return Err(format!("expected a number, found `{s}`"));
        }
        let (digits, dtype) = match (s.strip_suffix("f32"), s.strip_suffix("f64")) {
            (Some(d), _) => (d, Some(DType::F32)),
            (_, Some(d)) => (d, Some(DType::F64)),
            _ => (s, None),
        };
        digits.parse::<f64>().map(|v| Num::new(v, dtype)).map_err(|e| e.to_string())
    }
}

/// An operation's attribute, as a leaf child of its e-node. Written without spaces because the
/// e-graph's s-expression syntax splits on them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    /// A target shape (broadcast, reshape).
    Shape(Shape),
    /// Axes (sum, reduce_max) or a permutation (transpose).
    Axes(Vec<usize>),
    /// `axis:start:end` of a slice.
    Range(usize, usize, usize),
    /// `axis:before:after` of a pad.
    Pad(usize, usize, usize),
    /// The axis of a concatenation.
    Axis(usize),
    /// The target of a cast.
    DType(DType),
    /// The order of a polygamma function.
    Order(u32),
    /// Whether a histogram reflects the kernel mass outside its edges into the end bins.
    Reflect(bool),
}

fn join(v: &[usize]) -> String {
    v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Shape(s) => write!(f, "#shape{}", s.to_string().replace(' ', "")),
            Attr::Axes(a) => write!(f, "#axes[{}]", join(a)),
            Attr::Range(a, s, e) => write!(f, "#range{a}:{s}:{e}"),
            Attr::Pad(a, b, c) => write!(f, "#pad{a}:{b}:{c}"),
            Attr::Axis(a) => write!(f, "#axis{a}"),
            Attr::DType(d) => write!(f, "#{d}"),
            Attr::Order(n) => write!(f, "#order{n}"),
            Attr::Reflect(r) => write!(f, "#reflect{r}"),
        }
    }
}

fn triple(s: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<usize> = s
        .split(':')
        .map(|p| p.parse().map_err(|_| format!("expected a:b:c, found `{s}`")))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [a, b, c] => Ok((*a, *b, *c)),
        _ => Err(format!("expected a:b:c, found `{s}`")),
    }
}

impl FromStr for Attr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected an attribute such as `#shape[events,2]`, found `{s}`");
        let rest = s.strip_prefix('#').ok_or_else(bad)?;
        if let Some(shape) = rest.strip_prefix("shape") {
            return shape.parse().map(Attr::Shape);
        }
        if let Some(axes) = rest.strip_prefix("axes[").and_then(|a| a.strip_suffix(']')) {
            let axes = axes
                .split(',')
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            return Ok(Attr::Axes(axes));
        }
        if let Some(r) = rest.strip_prefix("range") {
            let (a, b, c) = triple(r)?;
            return Ok(Attr::Range(a, b, c));
        }
        if let Some(r) = rest.strip_prefix("pad") {
            let (a, b, c) = triple(r)?;
            return Ok(Attr::Pad(a, b, c));
        }
        if let Some(a) = rest.strip_prefix("axis") {
            return a.parse().map(Attr::Axis).map_err(|_| bad());
        }
        if let Some(r) = rest.strip_prefix("reflect") {
            return r.parse().map(Attr::Reflect).map_err(|_| bad());
        }
        if let Some(n) = rest.strip_prefix("order") {
            return n.parse().map(Attr::Order).map_err(|_| bad());
        }
        rest.parse().map(Attr::DType).map_err(|_| bad())
    }
}

/// A reference to an entry of the conversion's leaf table: an input, param, knob, non-uniform
/// constant, or the operation of a custom node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Leaf(pub usize);

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%leaf{}", self.0)
    }
}

impl FromStr for Leaf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix("%leaf")
            .and_then(|n| n.parse().ok())
            .map(Leaf)
            .ok_or_else(|| format!("expected a leaf reference such as `%leaf3`, found `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_text() {
        for a in [
            Attr::Shape("[events, 2]".parse().unwrap()),
            Attr::Axes(vec![0, 2]),
            Attr::Axes(vec![]),
            Attr::Range(1, 2, 5),
            Attr::Pad(0, 1, 3),
            Attr::Axis(2),
            Attr::DType(DType::F32),
            Attr::Order(3),
            Attr::Reflect(true),
        ] {
            assert_eq!(a.to_string().parse::<Attr>().unwrap(), a, "{a}");
        }
        assert!("x".parse::<Num>().is_err());
        assert_eq!("-1.5".parse::<Num>().unwrap(), Num::new(-1.5, None));
        let typed = Num::new(0.1, Some(DType::F32));
        assert_eq!(typed.to_string().parse::<Num>().unwrap(), typed);
    }
}
