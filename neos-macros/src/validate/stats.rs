//! Validation of the statistics: the `loss` objectives (weighted sums of statistics) and the
//! `metrics`, each statistic with its arguments. A second `impl` of the validator, split out of
//! `validate.rs` because the statistics are a concept of their own.

use super::*;

impl Ctx {
    pub(super) fn objectives(&mut self, entries: &[syn::Expr], poi: Option<&str>) -> Vec<Objective> {
        let mut out: Vec<Objective> = Vec::new();
        for e in entries {
            let (name, body) = match e {
                syn::Expr::Assign(a) => match ident_of(&a.left) {
                    Some(n) => (n, &*a.right),
                    None => {
                        self.err(&a.left, format!("expected an objective's name, found `{}`", tokens(&a.left)));
                        continue;
                    }
                },
                other => match stat_name(other) {
                    Some(n) => (n, other),
                    None => {
                        self.err(
                            other,
                            format!(
                                "expected a statistic ({STATS}) or `name = weighted sum`, found `{}`",
                                tokens(other)
                            ),
                        );
                        continue;
                    }
                },
            };
            let Some(terms) = self.terms(body, poi, 1.0) else { continue };
            if out.iter().any(|o| o.name == name) {
                self.err(e, format!("expected objectives of distinct names, found `{name}` twice"));
                continue;
            }
            let at = self.spans.loc(e);
            out.push(Objective { name, terms, at });
        }
        out
    }

    /// A weighted sum of statistics: `stat`, `w * stat`, `stat * w`, sums and differences.
    fn terms(&mut self, e: &syn::Expr, poi: Option<&str>, sign: f64) -> Option<Vec<(f64, Stat)>> {
        match e {
            syn::Expr::Paren(p) => self.terms(&p.expr, poi, sign),
            syn::Expr::Binary(b) if matches!(b.op, syn::BinOp::Add(_) | syn::BinOp::Sub(_)) => {
                let right_sign = if matches!(b.op, syn::BinOp::Sub(_)) { -sign } else { sign };
                let (l, r) = (self.terms(&b.left, poi, sign), self.terms(&b.right, poi, right_sign));
                let mut l = l?;
                l.extend(r?);
                Some(l)
            }
            syn::Expr::Binary(b) if matches!(b.op, syn::BinOp::Mul(_)) => {
                let (weight, stat) =
                    if literal(&b.left).is_some() { (&*b.left, &*b.right) } else { (&*b.right, &*b.left) };
                let w = self.number(weight, "a number literal as the weight of a statistic");
                let s = self.stat(stat, poi);
                Some(vec![(sign * w?, s?)])
            }
            other => Some(vec![(sign, self.stat(other, poi)?)]),
        }
    }

    pub(super) fn metrics(&mut self, entries: &[syn::Expr], poi: Option<&str>) -> Vec<Metric> {
        let mut out: Vec<Metric> = Vec::new();
        for e in entries {
            let (name, body) = match e {
                syn::Expr::Assign(a) => (ident_of(&a.left).unwrap_or_default(), &*a.right),
                other => (stat_name(other).unwrap_or_default(), other),
            };
            let Some(stat) = self.stat(body, poi) else { continue };
            if out.iter().any(|m| m.name == name) {
                self.err(
                    e,
                    format!("expected metrics of distinct names, found `{name}` twice (name one: `other = …`)"),
                );
                continue;
            }
            let at = self.spans.loc(e);
            out.push(Metric { name, stat, at });
        }
        out
    }

    /// `cls`, `cls(mu = 1.0)`, `discovery`, `poi_uncert`, `bce(signal, backgrounds…)`.
    fn stat(&mut self, e: &syn::Expr, poi: Option<&str>) -> Option<Stat> {
        let (name, args): (String, Vec<&syn::Expr>) = match e {
            syn::Expr::Call(c) => (ident_of(&c.func).unwrap_or_default(), c.args.iter().collect()),
            other => (ident_of(other).unwrap_or_default(), Vec::new()),
        };
        let at = self.spans.loc(e);
        match name.as_str() {
            "cls" => {
                let mu_test = match args.as_slice() {
                    [] => 1.0,
                    [syn::Expr::Assign(a)] => {
                        let key = ident_of(&a.left).unwrap_or_default();
                        if let Some(poi) = poi.filter(|p| *p != key) {
                            self.err(
                                &a.left,
                                format!("cls: expected the poi `{poi}` as the argument's name, found `{key}`"),
                            );
                        }
                        self.number(&a.right, "a number literal as the poi's test value")?
                    }
                    [value] => self.number(value, "a number literal as the poi's test value")?,
                    _ => {
                        self.err(
                            e,
                            format!("cls: expected at most 1 argument (the poi's test value), found {}", args.len()),
                        );
                        return None;
                    }
                };
                Some(Stat::Cls { mu_test, at })
            }
            "discovery" | "poi_uncert" => {
                if !args.is_empty() || matches!(e, syn::Expr::Call(_)) {
                    self.err(e, format!("{name}: expected no arguments, found {}", args.len()));
                    return None;
                }
                Some(if name == "discovery" { Stat::Discovery { at } } else { Stat::PoiUncert { at } })
            }
            "bce" => {
                if args.len() < 2 {
                    self.err(e, format!("bce: expected the signal's network output and at least one background's, found {} argument(s)", args.len()));
                    return None;
                }
                let converted: Vec<Option<Expr>> = args.iter().map(|a| self.expr(a)).collect();
                let mut converted: Vec<Expr> = converted.into_iter().collect::<Option<_>>()?;
                let signal = converted.remove(0);
                Some(Stat::Bce { signal, backgrounds: converted, at })
            }
            _ => {
                self.err(e, format!("expected a statistic ({STATS}), found `{}`", tokens(e)));
                None
            }
        }
    }
}
