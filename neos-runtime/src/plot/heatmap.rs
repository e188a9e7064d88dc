//! A function on the plane as a heat map with a colour bar, and samples of points scattered
//! over it: the neos paper's picture of the network output over the four blobs.

use std::path::Path;

use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::{
    check_text, colour, drawing, first_non_finite, legend, register_font, tick_label, Area, Figure, PlotError, FONT,
};

/// Values of a function on a regular grid over `extent` = [x_min, x_max, y_min, y_max].
///
/// `values[[i, j]]` is the value in the cell of row i and column j: rows run up the y axis
/// from `y_min` (row 0 is the bottom, as matplotlib's `imshow(origin="lower")`), columns along
/// the x axis from `x_min`.
#[derive(Clone, Copy, Debug)]
pub struct HeatMap<'a> {
    pub values: ArrayView2<'a, f64>,
    pub extent: [f64; 4],
    /// Names the colour bar.
    pub label: &'a str,
}

/// One sample of points to scatter, `[n, 2]` (x, y) rows, labelled for the legend.
#[derive(Clone, Copy, Debug)]
pub struct Scatter<'a> {
    pub label: &'a str,
    pub points: ArrayView2<'a, f64>,
}

/// Draws the heat map with a colour bar (viridis) and every sample's points over it into a PNG
/// at `path`, with a legend of the samples. Points outside the extent are not drawn.
pub fn heat_map(map: &HeatMap<'_>, scatter: &[Scatter<'_>], path: &Path, figure: &Figure) -> Result<(), PlotError> {
    check_heat_map(map, scatter, figure)?;
    let root = BitMapBackend::new(path, figure.size).into_drawing_area();
    draw_heat_map(&root, map, scatter, path, figure)?;
    root.present().map_err(drawing(path))
}

/// Everything that can be wrong with the input, before anything is drawn or a file created.
fn check_heat_map(map: &HeatMap<'_>, scatter: &[Scatter<'_>], figure: &Figure) -> Result<(), PlotError> {
    figure.check()?;
    let (rows, cols) = map.values.dim();
    if rows == 0 || cols == 0 {
        return Err(PlotError::Input(format!("expected a grid of at least 1 × 1 values, found {rows} × {cols}")));
    }
    if let Some((k, v)) = first_non_finite(map.values.iter().copied()) {
        return Err(PlotError::Input(format!(
            "expected finite grid values, found {v} at row {}, column {}",
            k / cols,
            k % cols
        )));
    }
    let [x0, x1, y0, y1] = map.extent;
    if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite() && x0 < x1 && y0 < y1) {
        return Err(PlotError::Input(format!(
            "expected a finite extent with x_min < x_max and y_min < y_max, found {:?}",
            map.extent
        )));
    }
    check_text("the colour bar's label", map.label)?;
    for s in scatter {
        check_text("a sample's label", s.label)?;
        if s.points.ncols() != 2 {
            return Err(PlotError::Input(format!(
                "points {:?}: expected 2 columns (x, y), found {}",
                s.label,
                s.points.ncols()
            )));
        }
        if let Some((k, v)) = first_non_finite(s.points.iter().copied()) {
            return Err(PlotError::Input(format!(
                "points {:?}: expected finite coordinates, found {v} at row {}, column {}",
                s.label,
                k / 2,
                k % 2
            )));
        }
    }
    Ok(())
}

/// Draws into `root` what [`heat_map`] writes to a file (`path` names it in errors).
pub(super) fn draw_heat_map(
    root: &Area<'_>,
    map: &HeatMap<'_>,
    scatter: &[Scatter<'_>],
    path: &Path,
    figure: &Figure,
) -> Result<(), PlotError> {
    check_heat_map(map, scatter, figure)?;
    let [x0, x1, y0, y1] = map.extent;
    let (rows, cols) = map.values.dim();
    register_font()?;

    let lo = map.values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = map.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (v0, v1) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
    let shade = |v: f64| ViridisRGB.get_color(((v - v0) / (v1 - v0)) as f32);

    let err = drawing(path);
    root.fill(&WHITE).map_err(&err)?;
    let area = if figure.title.is_empty() {
        root.clone()
    } else {
        root.margin(figure.px(14.0), 0, 0, 0).titled(&figure.title, (FONT, figure.text(40.0))).map_err(&err)?
    };
    let bar_width = figure.px(190.0);
    let (main, bar) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(bar_width));

    let mut chart = ChartBuilder::on(&main)
        .margin(figure.px(24.0))
        .x_label_area_size(figure.text(70.0))
        .y_label_area_size(figure.text(100.0))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    let x_fmt = |v: &f64| tick_label(*v, x1 - x0);
    let y_fmt = |v: &f64| tick_label(*v, y1 - y0);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(figure.x_label.as_str())
        .y_desc(figure.y_label.as_str())
        .x_labels(7)
        .y_labels(7)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, figure.text(26.0)))
        .axis_desc_style((FONT, figure.text(30.0)))
        .draw()
        .map_err(&err)?;
    let (dx, dy) = ((x1 - x0) / cols as f64, (y1 - y0) / rows as f64);
    let cells = map.values.indexed_iter().map(|((i, j), &v)| {
        let corner = (x0 + j as f64 * dx, y0 + i as f64 * dy);
        Rectangle::new([corner, (corner.0 + dx, corner.1 + dy)], shade(v).filled())
    });
    chart.draw_series(cells).map_err(&err)?;

    let radius = figure.px(4.0).max(2);
    let legend_radius = figure.px(9.0).max(3);
    // plotters would pin points outside the axes to their border; leave them out instead.
    let inside = move |p: &ndarray::ArrayView1<'_, f64>| (x0..=x1).contains(&p[0]) && (y0..=y1).contains(&p[1]);
    for (k, s) in scatter.iter().enumerate() {
        let c = colour(k);
        let dots =
            s.points.rows().into_iter().filter(inside).map(move |p| Circle::new((p[0], p[1]), radius, c.filled()));
        chart.draw_series(dots).map_err(&err)?;
        // A dark rim keeps light points visible on the bright end of the map.
        let rims =
            s.points.rows().into_iter().filter(inside).map(move |p| Circle::new((p[0], p[1]), radius, BLACK.mix(0.7)));
        chart
            .draw_series(rims)
            .map_err(&err)?
            .label(s.label)
            .legend(move |(x, y)| Circle::new((x + legend_radius as i32, y), legend_radius, c.filled()));
    }
    if !scatter.is_empty() {
        legend(&mut chart, figure, SeriesLabelPosition::UpperLeft).map_err(&err)?;
    }

    // The colour bar: a column of thin cells over the value range, ticks on its right.
    let mut key = ChartBuilder::on(&bar)
        .margin_top(figure.px(24.0))
        .margin_bottom(figure.px(24.0) + figure.text(70.0))
        .margin_left(figure.px(10.0))
        .margin_right(figure.px(10.0))
        .right_y_label_area_size(figure.text(120.0))
        .build_cartesian_2d(0.0..1.0, v0..v1)
        .map_err(&err)?;
    let v_fmt = |v: &f64| tick_label(*v, v1 - v0);
    key.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(map.label)
        .y_labels(6)
        .y_label_formatter(&v_fmt)
        .label_style((FONT, figure.text(24.0)))
        .axis_desc_style((FONT, figure.text(28.0)))
        .draw()
        .map_err(&err)?;
    let steps = 256;
    let band = (v1 - v0) / steps as f64;
    let bands = (0..steps).map(|k| {
        let lo = v0 + k as f64 * band;
        Rectangle::new([(0.0, lo), (1.0, lo + band)], shade(lo + 0.5 * band).filled())
    });
    key.draw_series(bands).map_err(&err)?;
    Ok(())
}
