//! Histograms of several samples over shared bin edges, drawn as step outlines with a legend.

use std::path::Path;

use plotters::prelude::*;

use super::{
    check_text, colour, drawing, first_non_finite, legend, register_font, step_outline, tick_label, Figure, PlotError,
    FONT,
};

/// One sample's histogram: a bin content per bin (a count, or a yield such as the analysis's
/// `s` and `b`), labelled for the legend.
#[derive(Clone, Copy, Debug)]
pub struct Hist<'a> {
    pub label: &'a str,
    pub counts: &'a [f64],
}

/// Checks bin edges: at least two, finite and strictly increasing.
pub(super) fn check_edges(edges: &[f64]) -> Result<(), PlotError> {
    if edges.len() < 2 {
        return Err(PlotError::Input(format!("expected at least 2 bin edges, found {}", edges.len())));
    }
    if let Some((i, v)) = first_non_finite(edges.iter().copied()) {
        return Err(PlotError::Input(format!("expected finite bin edges, found {v} at {i}")));
    }
    if let Some(i) = edges.windows(2).position(|w| !(w[1] > w[0])) {
        return Err(PlotError::Input(format!(
            "expected strictly increasing bin edges, found {} then {} at {i} and {}",
            edges[i],
            edges[i + 1],
            i + 1
        )));
    }
    Ok(())
}

/// Counts `values` in the bins of `edges` as numpy does: bin j holds e_j ≤ v < e_{j+1}, the
/// last bin also its right edge; values outside the edges are not counted.
pub fn bin_counts(values: &[f64], edges: &[f64]) -> Result<Vec<f64>, PlotError> {
    check_edges(edges)?;
    if let Some((i, v)) = first_non_finite(values.iter().copied()) {
        return Err(PlotError::Input(format!("expected finite values to bin, found {v} at {i}")));
    }
    let bins = edges.len() - 1;
    let mut counts = vec![0.0; bins];
    for &v in values {
        if v < edges[0] || v > edges[bins] {
            continue;
        }
        // The number of edges ≤ v, less one, is v's bin; v on the last edge joins the last bin.
        let j = edges.partition_point(|&e| e <= v).saturating_sub(1).min(bins - 1);
        counts[j] += 1.0;
    }
    Ok(counts)
}

/// Draws each histogram's outline over `edges` into a PNG at `path`, with a legend of the labels.
pub fn histograms(edges: &[f64], hists: &[Hist<'_>], path: &Path, figure: &Figure) -> Result<(), PlotError> {
    figure.check()?;
    check_edges(edges)?;
    if hists.is_empty() {
        return Err(PlotError::Input("expected at least one histogram, found none".into()));
    }
    let bins = edges.len() - 1;
    for h in hists {
        check_text("a histogram's label", h.label)?;
        if h.counts.len() != bins {
            return Err(PlotError::Input(format!(
                "histogram {:?}: expected {bins} bin contents for {} edges, found {}",
                h.label,
                edges.len(),
                h.counts.len()
            )));
        }
        if let Some((i, v)) = first_non_finite(h.counts.iter().copied()) {
            return Err(PlotError::Input(format!(
                "histogram {:?}: expected finite bin contents, found {v} in bin {i}",
                h.label
            )));
        }
    }
    register_font()?;

    let lo = hists.iter().flat_map(|h| h.counts.iter().copied()).fold(0.0, f64::min);
    let hi = hists.iter().flat_map(|h| h.counts.iter().copied()).fold(0.0, f64::max);
    // Room above the tallest bin for the legend.
    let (y0, y1) = if hi > lo { (lo, hi + 0.25 * (hi - lo)) } else { (lo - 0.5, hi + 1.0) };
    let (x0, x1) = (edges[0], edges[bins]);

    let root = BitMapBackend::new(path, figure.size).into_drawing_area();
    let err = drawing(path);
    root.fill(&WHITE).map_err(&err)?;
    let mut builder = ChartBuilder::on(&root);
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
    let y_fmt = |v: &f64| tick_label(*v, y1 - y0);
    chart
        .configure_mesh()
        .x_desc(figure.x_label.as_str())
        .y_desc(figure.y_label.as_str())
        .x_labels(8)
        .y_labels(7)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, figure.text(26.0)))
        .axis_desc_style((FONT, figure.text(30.0)))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.1))
        .draw()
        .map_err(&err)?;

    let width = figure.px(4.0).max(2);
    for (i, h) in hists.iter().enumerate() {
        let c = colour(i);
        // A faint fill under each outline keeps overlapping histograms apart.
        let fill =
            (0..bins).map(|j| Rectangle::new([(edges[j], 0.0), (edges[j + 1], h.counts[j])], c.mix(0.08).filled()));
        chart.draw_series(fill).map_err(&err)?;
        // Closed down to zero at both ends, so that the first and last bins have sides.
        let mut outline = vec![(edges[0], 0.0)];
        outline.extend(step_outline(edges, h.counts, |c| c));
        outline.push((edges[bins], 0.0));
        let style = c.stroke_width(width);
        chart
            .draw_series(std::iter::once(PathElement::new(outline, style)))
            .map_err(&err)?
            .label(h.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], style));
    }
    legend(&mut chart, figure, SeriesLabelPosition::UpperRight).map_err(&err)?;
    root.present().map_err(&err)
}
