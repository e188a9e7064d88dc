//! Training as an animated GIF, as neos's README shows it: each frame the network's output
//! over the plane with the samples, the yields stacked, and the metric's curve so far.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::curves::draw_curve;
use super::heatmap::draw_heat_map;
use super::stack::draw_stacked;
use super::{colour, drawing, register_font, Area, Figure, HeatMap, PlotError, Scatter, Stack};

/// What one frame shows, left to right. (Arrays borrowed for the map and the points have a
/// lifetime of their own, `'m`: ndarray's views do not shorten theirs to the frame's.)
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a, 'm> {
    /// The training step the frame shows (in its title).
    pub step: usize,
    /// The network's output over the plane, and samples drawn over it.
    pub map: HeatMap<'m>,
    pub scatter: &'a [Scatter<'m>],
    /// The yields over their bin edges, and what the edges bin (the yields' x axis).
    pub edges: &'a [f64],
    pub binned: &'a str,
    pub stack: Stack<'a>,
    /// A metric's name and its (step, value) points up to this frame.
    pub metric: &'a str,
    pub curve: &'a [(usize, f64)],
}

/// An animated GIF written frame by frame; the file is complete after each frame.
pub struct Animation {
    root: Area<'static>,
    path: PathBuf,
    size: (u32, u32),
    frames: usize,
}

impl std::fmt::Debug for Animation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Animation")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("frames", &self.frames)
            .finish()
    }
}

impl Animation {
    /// Starts a GIF at `path` of three panels, each `panel` pixels (at least 320 × 240), shown
    /// `frame_ms` milliseconds a frame and looping.
    pub fn new(path: &Path, panel: (u32, u32), frame_ms: u32) -> Result<Self, PlotError> {
        Figure { size: panel, ..Figure::new("", "", "") }.check()?;
        register_font()?;
        let size = (3 * panel.0, panel.1);
        let backend = BitMapBackend::gif(path, size, frame_ms).map_err(drawing(path))?;
        Ok(Animation { root: backend.into_drawing_area(), path: path.to_path_buf(), size, frames: 0 })
    }

    /// How many frames have been written.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Draws and appends one frame.
    pub fn frame(&mut self, frame: &Frame<'_, '_>) -> Result<(), PlotError> {
        let err = drawing(&self.path);
        self.root.fill(&WHITE).map_err(&err)?;
        let panels = self.root.split_evenly((1, 3));
        let size = (self.size.0 / 3, self.size.1);
        let figure = |title: String, x: &str, y: &str| Figure { size, ..Figure::new(&title, x, y) };
        draw_heat_map(
            &panels[0],
            &frame.map,
            frame.scatter,
            &self.path,
            &figure(format!("step {}", frame.step), "x1", "x2"),
        )?;
        draw_stacked(
            &panels[1],
            frame.edges,
            &frame.stack,
            &self.path,
            &figure("yields".into(), frame.binned, "expected events"),
        )?;
        draw_curve(
            &panels[2],
            &format!("test {}", frame.metric),
            frame.curve,
            None,
            colour(0),
            &figure(String::new(), "step", ""),
            &self.path,
        )?;
        self.root.present().map_err(&err)?;
        self.frames += 1;
        Ok(())
    }
}
