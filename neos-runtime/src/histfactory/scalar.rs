//! Numbers that carry derivatives. The HistFactory likelihood is written once over [`Scalar`]:
//! in `f64` it gives values, and in nested dual numbers it gives directional derivatives of
//! any order, exactly (no finite differences), at a few times the cost of a value.
//!
//! `Dual<T>` is a + b·ε with ε² = 0, so f(a + bε) = f(a) + f′(a)·b·ε. Nesting k levels seeds k
//! independent directions: x + ε₁t₁ + … + ε_k t_k, and the coefficient of ε₁⋯ε_k of f is the
//! k-th mixed directional derivative ∂_{t₁}⋯∂_{t_k} f (see [`Scalar::top`]).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::special;

/// A real number, possibly carrying derivatives.
pub trait Scalar:
    Copy
    + Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// The number of ε levels (0 for `f64`).
    const ORDER: usize;

    /// A constant: no derivative.
    fn cst(x: f64) -> Self;

    /// The real part, which branches of piecewise functions are chosen by.
    fn re(self) -> f64;

    /// x + Σⱼ εⱼ tⱼ for `tangents` of length [`Self::ORDER`] (ε₁ innermost).
    fn seed(x: f64, tangents: &[f64]) -> Self;

    /// The coefficient of ε₁⋯ε_k (the value itself for `f64`).
    fn top(self) -> f64;

    fn exp(self) -> Self;
    fn ln(self) -> Self;
    /// ln(1 + self), accurate for small self.
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    /// selfᵉ for self > 0.
    fn powf(self, e: Self) -> Self;
    /// ln Γ(self), self > 0.
    fn lgamma(self) -> Self;
    /// ψ⁽ⁿ⁾(self), self > 0.
    fn polygamma(self, n: u32) -> Self;

    fn zero() -> Self {
        Self::cst(0.0)
    }
}

impl Scalar for f64 {
    const ORDER: usize = 0;

    fn cst(x: f64) -> Self {
        x
    }

    fn re(self) -> f64 {
        self
    }

    fn seed(x: f64, _: &[f64]) -> Self {
        x
    }

    fn top(self) -> f64 {
        self
    }

    fn exp(self) -> Self {
        f64::exp(self)
    }

    fn ln(self) -> Self {
        f64::ln(self)
    }

    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }

    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }

    fn powf(self, e: Self) -> Self {
        f64::powf(self, e)
    }

    fn lgamma(self) -> Self {
        special::lgamma(self)
    }

    fn polygamma(self, n: u32) -> Self {
        special::polygamma(n, self)
    }
}

/// a + b·ε with ε² = 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dual<T> {
    pub a: T,
    pub b: T,
}

impl<T: Scalar> Dual<T> {
    /// x + 1·ε: the variable a derivative is taken with respect to.
    pub fn var(x: T) -> Self {
        Dual { a: x, b: T::cst(1.0) }
    }

    /// x with no ε part.
    pub fn lift(x: T) -> Self {
        Dual { a: x, b: T::zero() }
    }
}

impl<T: Scalar> Add for Dual<T> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Dual { a: self.a + o.a, b: self.b + o.b }
    }
}

impl<T: Scalar> Sub for Dual<T> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Dual { a: self.a - o.a, b: self.b - o.b }
    }
}

impl<T: Scalar> Mul for Dual<T> {
    type Output = Self;
    // (a + bε)(c + dε) = ac + (ad + bc)ε
    fn mul(self, o: Self) -> Self {
        Dual { a: self.a * o.a, b: self.a * o.b + self.b * o.a }
    }
}

impl<T: Scalar> Div for Dual<T> {
    type Output = Self;
    // (a + bε)/(c + dε) = a/c + (b − a·d/c)/c ε
    fn div(self, o: Self) -> Self {
        let q = self.a / o.a;
        Dual { a: q, b: (self.b - q * o.b) / o.a }
    }
}

impl<T: Scalar> Neg for Dual<T> {
    type Output = Self;
    fn neg(self) -> Self {
        Dual { a: -self.a, b: -self.b }
    }
}

impl<T: Scalar> Add<f64> for Dual<T> {
    type Output = Self;
    fn add(self, o: f64) -> Self {
        Dual { a: self.a + o, b: self.b }
    }
}

impl<T: Scalar> Sub<f64> for Dual<T> {
    type Output = Self;
    fn sub(self, o: f64) -> Self {
        Dual { a: self.a - o, b: self.b }
    }
}

impl<T: Scalar> Mul<f64> for Dual<T> {
    type Output = Self;
    fn mul(self, o: f64) -> Self {
        Dual { a: self.a * o, b: self.b * o }
    }
}

impl<T: Scalar> Div<f64> for Dual<T> {
    type Output = Self;
    fn div(self, o: f64) -> Self {
        Dual { a: self.a / o, b: self.b / o }
    }
}

impl<T: Scalar> AddAssign for Dual<T> {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl<T: Scalar> SubAssign for Dual<T> {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}

impl<T: Scalar> MulAssign for Dual<T> {
    fn mul_assign(&mut self, o: Self) {
        *self = *self * o;
    }
}

impl<T: Scalar> Scalar for Dual<T> {
    const ORDER: usize = T::ORDER + 1;

    fn cst(x: f64) -> Self {
        Dual::lift(T::cst(x))
    }

    fn re(self) -> f64 {
        self.a.re()
    }

    fn seed(x: f64, tangents: &[f64]) -> Self {
        let k = Self::ORDER;
        Dual { a: T::seed(x, &tangents[..k - 1]), b: T::cst(tangents[k - 1]) }
    }

    fn top(self) -> f64 {
        self.b.top()
    }

    // d eˣ = eˣ dx
    fn exp(self) -> Self {
        let e = self.a.exp();
        Dual { a: e, b: e * self.b }
    }

    // d ln x = dx / x
    fn ln(self) -> Self {
        Dual { a: self.a.ln(), b: self.b / self.a }
    }

    // d ln(1 + x) = dx / (1 + x)
    fn ln_1p(self) -> Self {
        Dual { a: self.a.ln_1p(), b: self.b / (self.a + 1.0) }
    }

    // d √x = dx / (2√x)
    fn sqrt(self) -> Self {
        let s = self.a.sqrt();
        Dual { a: s, b: self.b / (s * 2.0) }
    }

    // d xʸ = xʸ (dy ln x + y dx / x)
    fn powf(self, e: Self) -> Self {
        let v = self.a.powf(e.a);
        Dual { a: v, b: v * (e.b * self.a.ln() + e.a * self.b / self.a) }
    }

    // d ln Γ(x) = ψ(x) dx
    fn lgamma(self) -> Self {
        Dual { a: self.a.lgamma(), b: self.a.polygamma(0) * self.b }
    }

    // d ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁺¹⁾(x) dx
    fn polygamma(self, n: u32) -> Self {
        Dual { a: self.a.polygamma(n), b: self.a.polygamma(n + 1) * self.b }
    }
}

/// Value, first and second derivative of a function of one variable at `x`, from one
/// evaluation in second-order dual numbers.
pub fn second_order(x: f64, f: impl Fn(Dual<Dual<f64>>) -> Dual<Dual<f64>>) -> [f64; 3] {
    let v = f(Dual::<Dual<f64>>::seed(x, &[1.0, 1.0]));
    [v.a.a, v.a.b, v.b.b]
}
