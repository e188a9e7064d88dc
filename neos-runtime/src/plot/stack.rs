//! Yields as a physicist shows them: the samples stacked (backgrounds below, the signal on
//! top), an uncertainty band around the total, outlines of variations over the stack, and a
//! log scale when the yields span more than two decades.

use std::path::Path;

use plotters::prelude::*;

use super::hist::check_edges;
use super::{
    check_text, colour, drawing, first_non_finite, legend, register_font, step_outline, tick_label, Area, Figure, Hist,
    PlotError, FONT,
};

/// What [`stacked`] draws over shared bin edges.
#[derive(Clone, Copy, Debug)]
pub struct Stack<'a> {
    /// Stacked from the bottom up: the backgrounds first, the signal last (on top).
    pub layers: &'a [Hist<'a>],
    /// The ± uncertainty of the stack's total in each bin (e.g. the Monte Carlo statistical
    /// uncertainty of the model), drawn as a hatched band around the top of the stack.
    pub band: Option<(&'a str, &'a [f64])>,
    /// Outlines drawn over the stack, not added to it (systematic variations, data).
    pub overlays: &'a [Hist<'a>],
}

/// `c` halfway to white.
fn pale(c: RGBColor) -> RGBColor {
    let half = |v: u8| ((u16::from(v) + 255) / 2) as u8;
    RGBColor(half(c.0), half(c.1), half(c.2))
}

fn check_hist(h: &Hist<'_>, bins: usize) -> Result<(), PlotError> {
    check_text("a histogram's label", h.label)?;
    if h.counts.len() != bins {
        return Err(PlotError::Input(format!(
            "histogram {:?}: expected {bins} bin contents, found {}",
            h.label,
            h.counts.len()
        )));
    }
    if let Some((i, v)) = first_non_finite(h.counts.iter().copied()) {
        return Err(PlotError::Input(format!(
            "histogram {:?}: expected finite bin contents, found {v} in bin {i}",
            h.label
        )));
    }
    if let Some(i) = h.counts.iter().position(|c| *c < 0.0) {
        return Err(PlotError::Input(format!(
            "histogram {:?}: expected yields of at least 0 to stack, found {} in bin {i}",
            h.label, h.counts[i]
        )));
    }
    Ok(())
}

/// Draws `stack` over `edges` into a PNG at `path`. The y axis is logarithmic (ticks 1e-k)
/// when the positive contents drawn span more than two decades, so that a small signal on a
/// large background stays visible; linear otherwise.
pub fn stacked(edges: &[f64], stack: &Stack<'_>, path: &Path, figure: &Figure) -> Result<(), PlotError> {
    check_stack(edges, stack, figure)?;
    let root = BitMapBackend::new(path, figure.size).into_drawing_area();
    draw_stacked(&root, edges, stack, path, figure)?;
    root.present().map_err(drawing(path))
}

/// Everything that can be wrong with the input, before anything is drawn or a file created.
fn check_stack(edges: &[f64], stack: &Stack<'_>, figure: &Figure) -> Result<(), PlotError> {
    figure.check()?;
    check_edges(edges)?;
    let bins = edges.len() - 1;
    if stack.layers.is_empty() {
        return Err(PlotError::Input("expected at least one layer to stack, found none".into()));
    }
    for h in stack.layers.iter().chain(stack.overlays) {
        check_hist(h, bins)?;
    }
    if let Some((label, band)) = stack.band {
        check_hist(&Hist { label, counts: band }, bins)?;
    }
    Ok(())
}

/// Draws into `root` what [`stacked`] writes to a file (`path` names it in errors).
pub(super) fn draw_stacked(
    root: &Area<'_>,
    edges: &[f64],
    stack: &Stack<'_>,
    path: &Path,
    figure: &Figure,
) -> Result<(), PlotError> {
    check_stack(edges, stack, figure)?;
    let bins = edges.len() - 1;
    register_font()?;

    // The running sums: tops[k][j] is the top of layer k in bin j.
    let mut tops: Vec<Vec<f64>> = Vec::with_capacity(stack.layers.len());
    for (k, h) in stack.layers.iter().enumerate() {
        let below = if k == 0 { vec![0.0; bins] } else { tops[k - 1].clone() };
        tops.push(below.iter().zip(h.counts).map(|(b, c)| b + c).collect());
    }
    let total = tops[tops.len() - 1].clone();
    let band: Vec<(f64, f64)> = match stack.band {
        Some((_, d)) => total.iter().zip(d).map(|(t, d)| ((t - d).max(0.0), t + d)).collect(),
        None => total.iter().map(|t| (*t, *t)).collect(),
    };
    let shown = stack.layers.iter().chain(stack.overlays).flat_map(|h| h.counts.iter().copied());
    let positive: Vec<f64> = shown.chain(total.iter().copied()).filter(|v| *v > 0.0).collect();
    let hi = positive.iter().copied().chain(band.iter().map(|b| b.1)).fold(0.0, f64::max);
    // Contents below a thousandth of the tallest (the 10⁻³ that keeps an empty bin's yield
    // positive) do not stretch the axis over decades of nothing.
    let lo = positive.iter().copied().filter(|v| *v >= 1e-3 * hi).fold(f64::INFINITY, f64::min);
    let log_y = lo.is_finite() && hi / lo > 100.0;
    // In log mode every value is drawn as log10 of itself, from the decade below the smallest
    // content. The legend sits in the upper right, one line per entry: the axis reaches high
    // enough that the contents stay below it.
    let floor = if log_y { lo.log10().floor() } else { 0.0 };
    let y = |v: f64| if log_y { v.max(10f64.powf(floor)).log10() } else { v };
    let entries = stack.layers.len() + stack.overlays.len() + usize::from(stack.band.is_some());
    let legend_room = (0.06 + 0.06 * entries as f64).min(0.6);
    let (y0, y1) = if log_y {
        (floor, floor + (hi.log10() - floor).max(1.0) / (1.0 - legend_room))
    } else {
        (0.0, if hi > 0.0 { hi / (1.0 - legend_room) } else { 1.0 })
    };
    let (x0, x1) = (edges[0], edges[bins]);

    let err = drawing(path);
    root.fill(&WHITE).map_err(&err)?;
    let mut builder = ChartBuilder::on(root);
    if !figure.title.is_empty() {
        builder.caption(&figure.title, (FONT, figure.text(40.0)));
    }
    let mut chart = builder
        .margin(figure.px(24.0))
        .x_label_area_size(figure.text(70.0))
        .y_label_area_size(figure.text(110.0))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    let x_fmt = |v: &f64| tick_label(*v, x1 - x0);
    // Log mode labels the whole decades only.
    let y_fmt = |v: &f64| {
        if !log_y {
            tick_label(*v, y1 - y0)
        } else if (v - v.round()).abs() < 1e-9 {
            format!("1e{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    let y_desc = if log_y { format!("{} (log scale)", figure.y_label) } else { figure.y_label.clone() };
    chart
        .configure_mesh()
        .x_desc(figure.x_label.as_str())
        .y_desc(y_desc.as_str())
        .x_labels(8)
        .y_labels(if log_y { ((y1 - y0).ceil() as usize + 1).clamp(2, 12) } else { 7 })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, figure.text(26.0)))
        .axis_desc_style((FONT, figure.text(30.0)))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.1))
        .draw()
        .map_err(&err)?;

    // Each layer from the top of the one below it to its own top, in a pale opaque shade of
    // its colour (translucent layers would mix where they meet).
    for (k, h) in stack.layers.iter().enumerate().rev() {
        let c = pale(colour(k));
        let bars = (0..bins).map(|j| {
            let bottom = if k == 0 { 0.0 } else { tops[k - 1][j] };
            Rectangle::new([(edges[j], y(bottom)), (edges[j + 1], y(tops[k][j]))], c.filled())
        });
        chart
            .draw_series(bars)
            .map_err(&err)?
            .label(h.label)
            .legend(move |(px, py)| Rectangle::new([(px, py - 8), (px + 30, py + 8)], c.filled()));
    }
    let width = figure.px(3.0).max(2);
    if let Some((label, _)) = stack.band {
        let hatch = BLACK.mix(0.35);
        let boxes =
            (0..bins).map(|j| Rectangle::new([(edges[j], y(band[j].0)), (edges[j + 1], y(band[j].1))], hatch.filled()));
        chart
            .draw_series(boxes)
            .map_err(&err)?
            .label(label)
            .legend(move |(px, py)| Rectangle::new([(px, py - 8), (px + 30, py + 8)], hatch.filled()));
    }
    for (i, h) in stack.overlays.iter().enumerate() {
        let style = colour(stack.layers.len() + i).stroke_width(width);
        let outline = step_outline(edges, h.counts, y);
        chart
            .draw_series(std::iter::once(PathElement::new(outline, style)))
            .map_err(&err)?
            .label(h.label)
            .legend(move |(px, py)| PathElement::new(vec![(px, py), (px + 30, py)], style));
    }
    legend(&mut chart, figure, SeriesLabelPosition::UpperRight).map_err(&err)?;
    Ok(())
}
