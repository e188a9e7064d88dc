//! The training curves of a run: one panel per series (the loss, then each metric) against the
//! step, with the best step marked.

use std::path::Path;

use plotters::prelude::*;

use super::{colour, drawing, first_non_finite, padded, register_font, tick_label, Area, Figure, PlotError, FONT};
use crate::train::RunLog;

/// Draws the training loss and every test metric of `log` against the step into a PNG at
/// `path`, one panel each, with the best step (by the run's selection metric) marked by a dot
/// on every curve.
/// The figure's `x_label` names the step axis of every panel; each panel is titled by its
/// series, and `y_label` is not used.
pub fn metric_curves(log: &RunLog, path: &Path, figure: &Figure) -> Result<(), PlotError> {
    figure.check()?;
    register_font()?;
    if log.records.is_empty() {
        return Err(PlotError::Input("expected a run log with at least one step, found none".into()));
    }
    let names = log.series_names();
    let mut series = Vec::with_capacity(names.len());
    for name in &names {
        let values = log.series(name).ok_or_else(|| {
            PlotError::Input(format!("expected every step record to have a value of {name}, found one without"))
        })?;
        if let Some((i, v)) = first_non_finite(values.iter().map(|p| p.1)) {
            return Err(PlotError::Input(format!(
                "expected finite values of {name}, found {v} at step {}",
                values[i].0
            )));
        }
        series.push(values);
    }
    let best = log.best.as_ref().map(|b| b.step);

    let root = BitMapBackend::new(path, figure.size).into_drawing_area();
    let err = drawing(path);
    root.fill(&WHITE).map_err(&err)?;
    let area = if figure.title.is_empty() {
        root.clone()
    } else {
        root.margin(figure.px(14.0), 0, 0, 0).titled(&figure.title, (FONT, figure.text(40.0))).map_err(&err)?
    };
    let cols = match names.len() {
        1 => 1,
        2..=4 => 2,
        _ => 3,
    };
    let rows = names.len().div_ceil(cols);
    let panels = area.split_evenly((rows, cols));
    for (i, ((name, points), panel)) in names.iter().zip(&series).zip(&panels).enumerate() {
        // The loss is the training objective on each step's batch; the others are the test
        // set's metrics, which select the best step.
        let what = if name == "loss" { "training loss (batch)".to_string() } else { format!("test {name}") };
        let caption = match (&log.best, best) {
            (Some(b), Some(step)) if &b.metric == name => format!("{what} (best {} at step {step})", short(b.value)),
            _ => what,
        };
        draw_curve(panel, &caption, points, best, colour(i), figure, path)?;
    }
    root.present().map_err(&err)
}

/// Draws one series against the step into `panel`, captioned, with a dot at step `best`. A
/// positive series spanning more than two decades is drawn against log10 of its values.
pub(super) fn draw_curve(
    panel: &Area<'_>,
    caption: &str,
    points: &[(usize, f64)],
    best: Option<usize>,
    colour: RGBColor,
    figure: &Figure,
    path: &Path,
) -> Result<(), PlotError> {
    let err = drawing(path);
    let Some((&(first, _), &(last, _))) = points.first().zip(points.last()) else {
        return Err(PlotError::Input(format!("{caption}: expected at least one point, found none")));
    };
    // Steps are whole numbers; an integer axis gives them whole-numbered ticks.
    let (first, last) = (first as i64, last as i64);
    let (x0, x1) = if last > first { (first, last) } else { (first - 1, last + 1) };
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    // p-values and CLs fall by decades during training: a positive series spanning more
    // than two of them is drawn against log10 of its values, with ticks labelled 1e-k.
    let log_y = lo > 0.0 && hi / lo > 100.0;
    let shown: Vec<(usize, f64)> =
        if log_y { points.iter().map(|&(s, v)| (s, v.log10())).collect() } else { points.to_vec() };
    let points = &shown;
    let (lo, hi) = if log_y { (lo.log10(), hi.log10()) } else { (lo, hi) };
    let (y0, y1) = padded(lo, hi, 0.06);
    let caption = if log_y { format!("{caption}, log scale") } else { caption.to_string() };
    let mut chart = ChartBuilder::on(panel)
        .caption(caption, (FONT, figure.text(30.0)))
        .margin(figure.px(14.0))
        .x_label_area_size(figure.text(62.0))
        .y_label_area_size(figure.text(96.0))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    let y_fmt = |v: &f64| if log_y { format!("{:.0e}", 10f64.powf(*v)) } else { tick_label(*v, y1 - y0) };
    chart
        .configure_mesh()
        .x_desc(figure.x_label.as_str())
        .x_labels(6)
        .y_labels(6)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, figure.text(22.0)))
        .axis_desc_style((FONT, figure.text(26.0)))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(&err)?;
    let style = colour.stroke_width(figure.px(4.0).max(2));
    chart.draw_series(LineSeries::new(points.iter().map(|&(s, v)| (s as i64, v)), style)).map_err(&err)?;
    if let Some(step) = best {
        if let Some(&(s, v)) = points.iter().find(|p| p.0 == step) {
            let marker = Circle::new((s as i64, v), figure.px(8.0).max(3), BLACK.filled());
            chart.draw_series(std::iter::once(marker)).map_err(&err)?;
        }
    }
    Ok(())
}

/// Four decimals, or four significant digits in scientific notation for very small or large values.
fn short(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e5).contains(&v.abs()) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}
