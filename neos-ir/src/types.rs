//! Element types and shapes, including the dynamic *events* dimension.

use std::fmt;

/// The floating-point element type of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    /// Rounds an `f64` to what this dtype can hold, so that the interpreter, which computes in
    /// `f64`, reproduces the storage precision of `f32` nodes.
    pub fn round(self, v: f64) -> f64 {
        match self {
            DType::F32 => v as f32 as f64,
            DType::F64 => v,
        }
    }

    /// Bytes per element, used by the simplifier's cost model.
    pub fn size_of(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

impl std::str::FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(DType::F32),
            "f64" => Ok(DType::F64),
            other => Err(format!("expected `f32` or `f64`, found `{other}`")),
        }
    }
}

/// One dimension of a shape: a size fixed when the graph is built, or the number of events of
/// one sample, which is only known when data is bound.
///
/// Samples of a physics analysis have their own sizes (12 000 signal events beside 30 000 of a
/// background), so each events dimension carries the index of its *group*: arrays of one group
/// have the same number of events (a sample's features, its weights and everything computed
/// event by event from them), arrays of different groups need not, and an operation that would
/// pair events of two groups element by element is a type error. [`EVENTS`] is group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Fixed(usize),
    Events(u16),
}

/// The number of events of each group when a graph runs: one count for all groups (`usize`,
/// convenient for tests and cost estimates) or one count per group (`&[usize]`, indexed by
/// group; a group beyond the slice has no events).
pub trait EventCounts: Copy {
    fn events(self, group: u16) -> usize;
}

impl EventCounts for usize {
    fn events(self, _: u16) -> usize {
        self
    }
}

impl EventCounts for &[usize] {
    fn events(self, group: u16) -> usize {
        self.get(usize::from(group)).copied().unwrap_or(0)
    }
}

impl Dim {
    /// Resolves the dimension to a size, given the number of events of the current data.
    pub fn resolve(self, events: impl EventCounts) -> usize {
        match self {
            Dim::Fixed(n) => n,
            Dim::Events(g) => events.events(g),
        }
    }

    pub fn fixed(self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(n),
            Dim::Events(_) => None,
        }
    }

    /// The events group of this dimension, if it is an events dimension.
    pub fn events_group(self) -> Option<u16> {
        match self {
            Dim::Fixed(_) => None,
            Dim::Events(g) => Some(g),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Self {
        Dim::Fixed(n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Events(0) => f.write_str("events"),
            Dim::Events(g) => write!(f, "events{g}"),
        }
    }
}

/// A shape: a list of dimensions, at most one of which is an events dimension.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape(pub Vec<Dim>);

/// Shorthand for the events dimension of group 0 when writing shapes: `[EVENTS, Dim::Fixed(2)]`.
pub const EVENTS: Dim = Dim::Events(0);

impl Shape {
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    pub fn new(dims: impl IntoIterator<Item = Dim>) -> Self {
        Shape(dims.into_iter().collect())
    }

    pub fn fixed(dims: &[usize]) -> Self {
        Shape(dims.iter().map(|&d| Dim::Fixed(d)).collect())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    pub fn is_scalar(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_events(&self) -> bool {
        self.events_group().is_some()
    }

    /// The events group of the shape's (first) events dimension.
    pub fn events_group(&self) -> Option<u16> {
        self.0.iter().find_map(|d| d.events_group())
    }

    /// Number of events dimensions (valid shapes have at most one).
    pub fn events_dims(&self) -> usize {
        self.0.iter().filter(|d| d.events_group().is_some()).count()
    }

    /// Product of the fixed dimensions.
    pub fn fixed_numel(&self) -> usize {
        self.0.iter().filter_map(|d| d.fixed()).product()
    }

    /// Concrete sizes for given numbers of events.
    pub fn resolve(&self, events: impl EventCounts) -> Vec<usize> {
        self.0.iter().map(|d| d.resolve(events)).collect()
    }

    /// Number of elements for given numbers of events.
    pub fn numel(&self, events: impl EventCounts) -> usize {
        self.resolve(events).iter().product()
    }

    /// The shape two operands broadcast to under NumPy's rules (aligned on the right; a fixed
    /// size of one stretches to anything, including an events dimension; events dimensions of
    /// two groups do not pair).
    pub fn broadcast_with(&self, other: &Shape) -> Result<Shape, String> {
        let rank = self.rank().max(other.rank());
        let mut out = Vec::with_capacity(rank);
        for i in 0..rank {
            let a = dim_from_right(self, rank, i);
            let b = dim_from_right(other, rank, i);
            out.push(match (a, b) {
                (x, y) if x == y => x,
                (Dim::Fixed(1), y) => y,
                (x, Dim::Fixed(1)) => x,
                (Dim::Events(_), Dim::Events(_)) => {
                    return Err(format!(
                        "shapes {self} and {other} do not broadcast: dimension {i} holds the events of two samples \
                         ({a} and {b}), which need not have the same number"
                    ))
                }
                _ => {
                    return Err(format!(
                        "shapes {self} and {other} do not broadcast: dimension {i} is {a} in one and {b} in the other"
                    ))
                }
            });
        }
        Ok(Shape(out))
    }

    /// Whether `self` broadcasts to `target` without changing `target`.
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.rank() <= target.rank() && self.broadcast_with(target).map(|s| &s == target).unwrap_or(false)
    }
}

/// The `i`-th dimension of `s` when it is right-aligned in a shape of rank `rank` (leading
/// missing dimensions count as size one).
fn dim_from_right(s: &Shape, rank: usize, i: usize) -> Dim {
    let offset = rank - s.rank();
    if i < offset {
        Dim::Fixed(1)
    } else {
        s.0[i - offset]
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let inner = s
            .trim()
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| format!("expected a shape like `[events, 2]`, found `{s}`"))?;
        let mut dims = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            dims.push(if let Some(group) = part.strip_prefix("events") {
                Dim::Events(if group.is_empty() {
                    0
                } else {
                    group.parse().map_err(|_| format!("expected `events` or `events<group>`, found `{part}`"))?
                })
            } else {
                Dim::Fixed(part.parse().map_err(|_| format!("expected a dimension size or `events`, found `{part}`"))?)
            });
        }
        Ok(Shape(dims))
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape::fixed(&dims)
    }
}

impl<const N: usize> From<[Dim; N]> for Shape {
    fn from(dims: [Dim; N]) -> Self {
        Shape(dims.to_vec())
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::fixed(dims)
    }
}

/// The static type of a node: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl Into<Shape>) -> Self {
        TensorType { dtype, shape: shape.into() }
    }

    pub fn scalar(dtype: DType) -> Self {
        TensorType { dtype, shape: Shape::scalar() }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy_with_events() {
        let a = Shape::new([EVENTS, Dim::Fixed(1)]);
        let b = Shape::fixed(&[4]);
        assert_eq!(a.broadcast_with(&b).unwrap(), Shape::new([EVENTS, Dim::Fixed(4)]));
        assert!(Shape::fixed(&[3]).broadcast_with(&Shape::fixed(&[4])).is_err());
        assert!(Shape::new([EVENTS]).broadcast_with(&Shape::fixed(&[4])).is_err());
        assert!(Shape::new([EVENTS]).broadcast_with(&Shape::new([Dim::Events(1)])).is_err());
        assert!(Shape::scalar().broadcasts_to(&Shape::new([EVENTS, Dim::Fixed(2)])));
        assert!(!Shape::fixed(&[2]).broadcasts_to(&Shape::fixed(&[1])));
    }

    #[test]
    fn shapes_round_trip_through_text() {
        for s in ["[]", "[events, 2]", "[events3, 1]", "[3, 4, 5]"] {
            let shape: Shape = s.parse().unwrap();
            assert_eq!(shape.to_string(), s);
        }
        assert!("[x]".parse::<Shape>().is_err());
    }
}
