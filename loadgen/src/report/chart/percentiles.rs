//! `percentiles.png`: every mode's latency distribution on one chart, HdrHistogram
//! style: x is the percentile on a "nines" axis (0%, 90%, 99%, 99.9%, ...), y the
//! latency on a log axis. Read from the `latency-<mode>.hgrm` files.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{DrawResult, GRID, MUTED, font, header, legend, mode_color};
use crate::report::data::RunData;
use crate::report::fmt;

/// The deepest tail shown: 99.999%.
pub(super) const MAX_NINES: f64 = 5.0;

/// One mode's distribution: (nines, latency ms) points, ending at its maximum.
struct Curve<'a> {
    color: RGBColor,
    mode: &'a str,
    points: Vec<(f64, f64)>,
    max: f64,
}

/// x position of a percentile below 1: -log10(1 - p), capped at the deepest tail.
pub(super) fn nines(percentile: f64) -> f64 {
    (-(1.0 - percentile).log10()).min(MAX_NINES)
}

/// A chart of latency distributions, as `percentiles.png` and `compare-percentiles.png`
/// draw them.
pub(super) type DistributionChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// The axes of a latency-distribution chart on `area`, drawn: x the percentile in
/// nines up to `x_end`, y the latency (ms) on a log axis that spans `values` (the
/// lowest positive one rounded down to a power of ten, the highest with room above).
/// Returns the chart and the axis' lowest latency (draw values below it there).
pub(super) fn distribution_axes<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    values: impl Iterator<Item = f64>,
    x_end: f64,
) -> Result<(DistributionChart<'a, 'b>, f64), Box<dyn std::error::Error>> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if hi > 0.0 {
        (
            10f64.powf(lo.log10().floor()).max(0.01),
            10f64.powf((hi * 1.5).log10().ceil()),
        )
    } else {
        (0.1, 1000.0)
    };
    let mut chart = ChartBuilder::on(area)
        .x_label_area_size(52)
        .y_label_area_size(86)
        .build_cartesian_2d(0f64..x_end, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .bold_line_style(GRID)
        .label_style(font(14))
        .axis_desc_style(font(15))
        .x_labels(x_end as usize + 1)
        .x_label_formatter(&|v| fmt::nines(*v))
        .x_desc("percentile (log scale of nines)")
        .y_desc("latency (ms, log scale)")
        .y_label_formatter(&|v| fmt::ms_tick(*v))
        .draw()?;
    Ok((chart, lo))
}

pub fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    run: &RunData,
    title: &str,
) -> DrawResult {
    let body = header(
        root,
        title,
        "Latency at each percentile of all requests of the run (every step), from the \
         latency-<mode>.hgrm files. Further right is rarer; the last point is the maximum.",
        &[],
    )?;
    let mut curves: Vec<Curve> = run
        .mode_names()
        .into_iter()
        .enumerate()
        .filter_map(|(i, mode)| {
            let h = run.histograms.get(mode)?;
            let points = h
                .points
                .iter()
                .filter(|p| p.percentile < 1.0)
                .map(|p| (nines(p.percentile), p.value_ms))
                .collect();
            let max = h.points.iter().map(|p| p.value_ms).fold(0.0, f64::max);
            Some(Curve {
                color: mode_color(i),
                mode,
                points,
                max,
            })
        })
        .collect();
    let x_end = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(2.0f64, f64::max)
        .ceil()
        .min(MAX_NINES);
    // The maximum (percentile 1) closes each curve at the right edge.
    for c in &mut curves {
        if let Some(&(x, _)) = c.points.last() {
            c.points.push((x, c.max));
        }
        c.points.push((x_end, c.max));
    }
    let area = body.margin(10, 20, 20, 50);
    let values = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
    let (mut chart, lo) = distribution_axes(&area, values, x_end)?;
    for Curve {
        color,
        mode,
        points,
        max,
    } in &curves
    {
        let (color, max) = (*color, *max);
        let p99 = run
            .summary
            .iter()
            .find(|s| s.mode == *mode && s.step == "all")
            .and_then(|s| s.p99_ms.get());
        let label = match p99 {
            Some(p99) => format!("{mode}: p99 {}, max {}", fmt::ms(p99), fmt::ms(max)),
            None => format!("{mode}: max {}", fmt::ms(max)),
        };
        let clamped = points.iter().map(|&(x, y)| (x, y.max(lo)));
        chart
            .draw_series(LineSeries::new(clamped, color.stroke_width(3)))?
            .label(label)
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 24, ly)], color.stroke_width(4))
            });
    }
    if curves.is_empty() {
        area.draw(&Text::new(
            "no latency-<mode>.hgrm file in this run",
            (140, 60),
            font(18).color(&MUTED),
        ))?;
    } else {
        legend(&mut chart, 14, 16)?;
    }
    Ok(())
}
