//! PNG figures of a run: metric curves from a run log, histograms over bin edges, and a
//! function on the plane as a heat map with event samples scattered over it (the neos paper's
//! figure of the network output over the four blobs); and the training as an animated GIF
//! ([`Animation`]), a frame of all three every few steps.
//!
//! Drawn with plotters' bitmap backend and its `ab_glyph` text, with Noto Sans embedded from the
//! `ttf-noto-sans` crate: no system fonts, no fontconfig, nothing beyond a C compiler to build.
//! Sizes of text and lines are chosen for slides: readable when the figure fills a projector.
//! Bad input (no data, mismatched lengths, non-finite values, unordered edges) is an error
//! naming what was expected and what was found, never a panic.

mod animation;
mod curves;
mod heatmap;
mod hist;
mod stack;

pub use animation::{Animation, Frame};
pub use curves::metric_curves;
pub use heatmap::{heat_map, HeatMap, Scatter};
pub use hist::{bin_counts, histograms, Hist};
pub use stack::{stacked, Stack};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

/// Why a figure could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlotError {
    /// The data or the options cannot make a figure.
    Input(String),
    /// Drawing or writing the PNG failed.
    Draw { path: PathBuf, message: String },
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Input(m) => write!(f, "plot: {m}"),
            PlotError::Draw { path, message } => write!(f, "plot {}: {message}", path.display()),
        }
    }
}

impl std::error::Error for PlotError {}

/// Size, title and axis names of a figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Width and height in pixels; at least 320 × 240.
    pub size: (u32, u32),
    /// Printed above the plot; none when empty.
    pub title: String,
    pub x_label: String,
    pub y_label: String,
}

impl Figure {
    /// A 1200 × 800 figure (3:2, sharp on a projector) with a title and axis names.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Figure { size: (1200, 800), title: title.into(), x_label: x_label.into(), y_label: y_label.into() }
    }

    fn check(&self) -> Result<(), PlotError> {
        let (w, h) = self.size;
        if w < 320 || h < 240 || w > 16_384 || h > 16_384 {
            return Err(PlotError::Input(format!(
                "expected a figure size between 320 × 240 and 16384 × 16384 pixels, found {w} × {h}"
            )));
        }
        check_text("the title", &self.title)?;
        check_text("the x label", &self.x_label)?;
        check_text("the y label", &self.y_label)
    }

    /// Sizes scale with the figure (given for 1200 × 800), so a small figure is not all text.
    fn px(&self, at_1200: f64) -> u32 {
        let scale = f64::from(self.size.0.min(self.size.1 * 3 / 2)) / 1200.0;
        (at_1200 * scale).round().max(1.0) as u32
    }

    /// A text size: scaled like [`Figure::px`], and never below 10 pixels.
    fn text(&self, at_1200: f64) -> u32 {
        self.px(at_1200).max(10)
    }
}

/// A figure's drawing area: a whole PNG, or a panel of an animation's frame.
type Area<'a> = plotters::drawing::DrawingArea<plotters::prelude::BitMapBackend<'a>, plotters::coord::Shift>;

/// Draws the legend of a chart's labelled series in the style every figure shares.
fn legend<'a, DB: plotters::prelude::DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut plotters::prelude::ChartContext<'a, DB, CT>,
    figure: &Figure,
    position: plotters::prelude::SeriesLabelPosition,
) -> Result<(), plotters::prelude::DrawingAreaErrorKind<DB::ErrorType>> {
    use plotters::style::{Color, BLACK, WHITE};
    chart
        .configure_series_labels()
        .position(position)
        .margin(figure.px(12.0))
        // The markers are 30 pixels wide whatever the figure's size.
        .legend_area_size(figure.text(40.0).max(38))
        .label_font((FONT, figure.text(26.0)))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
}

/// The points of a histogram's step outline over `edges`, each count drawn at `y(count)`.
fn step_outline(edges: &[f64], counts: &[f64], y: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    edges.windows(2).zip(counts).flat_map(|(e, &c)| [(e[0], y(c)), (e[1], y(c))]).collect()
}

/// The font family every figure uses; registered once with plotters.
const FONT: &str = "sans-serif";

/// Refuses text with a character the font has no glyph for (it would be drawn as an empty
/// box). Noto Sans covers Latin, Greek and Cyrillic, superscripts and the usual mathematical
/// signs (μ, σ, ±, ≤, √, ²), but not subscript digits: write x1, not x₁.
fn check_text(what: &str, text: &str) -> Result<(), PlotError> {
    use ab_glyph::Font;
    let font = ab_glyph::FontRef::try_from_slice(ttf_noto_sans::REGULAR)
        .map_err(|e| PlotError::Input(format!("the embedded Noto Sans font could not be parsed: {e}")))?;
    match text.chars().find(|&c| !c.is_whitespace() && font.glyph_id(c).0 == 0) {
        Some(c) => Err(PlotError::Input(format!(
            "expected text the plot font can draw in {what}, found {c:?} (U+{:04X}) in {text:?}",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, ttf_noto_sans::REGULAR).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Input("the embedded Noto Sans font could not be parsed".into()))
    }
}

/// Distinct colours for lines and points, dark enough on white and bright enough on the heat
/// map's dark end (the "tab10" set of matplotlib, which physicists' plots commonly use).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Maps any plotters error to a [`PlotError::Draw`] for `path`.
fn drawing<E: fmt::Debug>(path: &Path) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError::Draw { path: path.to_path_buf(), message: format!("{e:?}") }
}

/// The index and value of the first non-finite entry.
fn first_non_finite(values: impl IntoIterator<Item = f64>) -> Option<(usize, f64)> {
    values.into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

/// A range that shows all of `lo..hi` with a margin, and a unit-wide one around a constant.
fn padded(lo: f64, hi: f64, fraction: f64) -> (f64, f64) {
    if hi > lo {
        let pad = (hi - lo) * fraction;
        (lo - pad, hi + pad)
    } else {
        let half = if lo == 0.0 { 0.5 } else { 0.5 * lo.abs() };
        (lo - half, hi + half)
    }
}

/// Tick labels with as many digits as the axis needs, not plotters' default float printing.
fn tick_label(v: f64, span: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = (-(span / 5.0).log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}
