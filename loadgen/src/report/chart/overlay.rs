//! `compare-percentiles.png` of `loadgen compare A B`: both runs' latency distributions
//! overlaid on one chart, HdrHistogram style like `percentiles.png` (x: percentile on a
//! "nines" axis, y: latency on a log axis). Each mode keeps its report colour; run A is
//! drawn thin and pale, run B thick.

use std::path::Path;

use plotters::prelude::*;

use super::percentiles::{MAX_NINES, distribution_axes, nines};
use super::{DrawResult, MIN_H, WIDTH, draw_one, header, legend, mode_color, register_fonts};
use crate::report::{ReportError, fmt};
use crate::runfolder::HgrmPoint;

pub const FILE: &str = "compare-percentiles.png";

/// One distribution to draw: its run's label ("A" or "B"), mode and points.
pub struct Curve<'a> {
    pub run: &'a str,
    pub mode: &'a str,
    /// The mode's index among the modes compared (its colour).
    pub mode_index: usize,
    pub points: &'a [HgrmPoint],
    /// The run's p99 as its summary states it (the legend's figure).
    pub p99_ms: Option<f64>,
}

/// Draws `curves` (run A's first) into `path`.
pub fn draw(path: &Path, subtitle: &str, curves: &[Curve<'_>]) -> Result<(), ReportError> {
    register_fonts()?;
    draw_one(path, (WIDTH, MIN_H), |root| plot(root, subtitle, curves)).map_err(|e| {
        ReportError::Chart {
            file: path.to_path_buf(),
            message: e.to_string(),
        }
    })
}

fn plot(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    subtitle: &str,
    curves: &[Curve<'_>],
) -> DrawResult {
    let body = header(
        root,
        "Latency distributions, run A against run B",
        subtitle,
        &[],
    )?;
    let lines: Vec<(&Curve, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|c| {
            let max = c.points.iter().map(|p| p.value_ms).fold(0.0, f64::max);
            let mut pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter(|p| p.percentile < 1.0)
                .map(|p| (nines(p.percentile), p.value_ms))
                .collect();
            pts.push((MAX_NINES, max));
            (c, pts)
        })
        .collect();
    let area = body.margin(10, 20, 20, 50);
    let values = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (mut chart, lo) = distribution_axes(&area, values, MAX_NINES)?;
    for (c, pts) in &lines {
        let base = mode_color(c.mode_index);
        let is_a = c.run == "A";
        let color = if is_a { base.mix(0.45) } else { base.mix(1.0) };
        let width = if is_a { 2 } else { 4 };
        let p99 = c.p99_ms.map_or_else(|| "-".into(), fmt::ms);
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|&(x, y)| (x, y.max(lo))),
                color.stroke_width(width),
            ))?
            .label(format!("{} {}: p99 {p99}", c.run, c.mode))
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 24, ly)], color.stroke_width(width))
            });
    }
    if !lines.is_empty() {
        legend(&mut chart, 14, 16)?;
    }
    Ok(())
}
