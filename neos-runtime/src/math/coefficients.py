"""Derives the polynomial coefficients in `f64.rs` and `f32.rs` (run with mpmath installed:
`python3 coefficients.py`). Each polynomial is a least-squares fit in relative error at
Chebyshev nodes (close to minimax), computed at 50 significant digits with the coefficients
rounded to the target type one at a time (see `fit`); the script prints
the maximum relative error of the rounded polynomial on a dense grid, so a change of degree or
interval shows at once what it costs. The Rust tests measure the error of the whole functions.
"""

import struct
import sys

from mpmath import atanh, cos, erfc, exp, expm1, log, matrix, mp, mpf, pi, polyval, qr_solve, sqrt

mp.dps = 50


def f32(x):
    """x rounded to the nearest f32."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def shortest_f32(x):
    v = f32(x)
    for digits in range(1, 10):
        s = "%.*e" % (digits - 1, v)
        if f32(float(s)) == v:
            return repr(float(s))
    return repr(v)


def emit(name, coeffs, rust_type):
    """Coefficients in ascending order of power, as a Rust constant."""
    if rust_type == "f64":
        values = [repr(float(c)) for c in coeffs]
    else:
        values = [shortest_f32(c) for c in coeffs]
    body = ",\n".join("    " + v for v in values)
    print(f"const {name}: [{rust_type}; {len(values)}] = [\n{body},\n];")


def fit(f, lo, hi, degree, rust_type, name, scale=None):
    """A near-minimax polynomial of degree `degree` for f on [lo, hi], with coefficients in
    `rust_type`, and its worst relative error on a dense grid, weighted by `scale(x)` (the share
    of the final result that the polynomial carries) when given.

    The coefficients are rounded one at a time from the constant term up; after each rounding
    the higher ones are refitted (least squares in relative error at Chebyshev nodes, started
    from the Chebyshev interpolant) so that they absorb the rounding error of the lower ones.
    Rounding them all at once would cost more than the approximation error itself where the
    terms add up with one sign (the Φ tail near t = −1)."""
    rnd = (lambda c: mpf(float(c))) if rust_type == "f64" else (lambda c: mpf(f32(c)))
    n = degree + 1
    m = 4 * n
    nodes = [(lo + hi) / 2 + (hi - lo) / 2 * cos(pi * (i + mpf(1) / 2) / m) for i in range(m)]
    values = [f(x) for x in nodes]
    fixed = []
    for i in range(n):
        free = n - i
        a = matrix(m, free)
        b = matrix(m, 1)
        for r, (x, y) in enumerate(zip(nodes, values)):
            known = sum(c * x**j for j, c in enumerate(fixed))
            for col in range(free):
                a[r, col] = x ** (i + col) / y
            b[r] = (y - known) / y
        solution, _ = qr_solve(a, b)
        fixed.append(rnd(solution[0]))
    worst = mpf(0)
    for i in range(2001):
        x = lo + (hi - lo) * i / 2000
        exact = f(x)
        err = abs(polyval(list(reversed(fixed)), x) / exact - 1)
        if scale is not None:
            err *= scale(x)
        worst = max(worst, err)
    print(f"// {name}: degree {degree} on [{mp.nstr(lo, 6)}, {mp.nstr(hi, 6)}], worst relative "
          f"error {mp.nstr(worst, 3)}")
    emit(name, fixed, rust_type)
    sys.stdout.flush()


HALF_LN2 = log(2) / 2


def expm1_q(r):
    """(expm1(r) − r)/r², the part of expm1 that the polynomial carries."""
    return (expm1(r) - r) / (r * r) if r != 0 else mpf(1) / 2


def log_p(z):
    """(2 atanh(s)/s − 2)/z with z = s², the part of log(1 + f) the polynomial carries."""
    s = sqrt(z)
    return (2 * atanh(s) / s - 2) / z if z != 0 else mpf(2) / 3


def phi_tail(k, upper):
    """H(t) with Φ(−a) = exp(−a²/2) · H(t) · K/(a + K) and t = (a − K)/(a + K), which maps
    a ∈ [0, upper] onto t ∈ [−1, (upper − K)/(upper + K)]; H is smooth and close to constant."""

    def h(t):
        a = k * (1 + t) / (1 - t)
        return exp(a * a / 2) * erfc(a / sqrt(2)) / 2 * (a + k) / k

    return h, (upper - k) / (upper + k)


if __name__ == "__main__":
    # Below 2^-53 relative in the expm1 result the expm1 weight is |r|/2 at most.
    edge = HALF_LN2 * mpf("1.0001")
    fit(expm1_q, -edge, edge, 10, "f64", "EXPM1_F64", scale=lambda r: abs(r) / 2)
    fit(expm1_q, -edge, edge, 5, "f32", "EXPM1_F32", scale=lambda r: abs(r) / 2)
    # The log polynomial contributes z·P/2 ≤ 0.02 of the result; z ≤ 0.04 covers log1p too.
    fit(log_p, mpf(0), mpf("0.0401"), 7, "f64", "LOG_F64", scale=lambda z: z / 2)
    fit(log_p, mpf(0), mpf("0.0401"), 3, "f32", "LOG_F32", scale=lambda z: z / 2)
    # Φ(−a) with K = 5 up to a = 38.6 (f64: beyond, Φ underflows to 0) and K = 4 up to a = 14.5 (f32).
    h, top = phi_tail(mpf(5), mpf("38.6"))
    fit(h, mpf(-1), top, 23, "f64", "PHI_TAIL_F64")
    h, top = phi_tail(mpf(4), mpf("14.5"))
    fit(h, mpf(-1), top, 10, "f32", "PHI_TAIL_F32")
