//! `latency.png`: p50, p99 and max latency of the requests completing in each second,
//! one panel per mode on a shared log axis, with the chaos events marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    DrawResult, bold, draw_markers, font, header, legend, markers, mode_panels, segments, time_mesh,
};
use crate::report::data::RunData;
use crate::report::fmt;
use crate::runfolder::SecondRow;

const SERIES: [(&str, RGBColor, u32); 3] = [
    ("max", RGBColor(120, 120, 120), 1),
    ("p99", RGBColor(255, 127, 14), 2),
    ("p50", RGBColor(31, 119, 180), 2),
];

fn value(row: &SecondRow, series: &str) -> Option<f64> {
    match series {
        "p50" => row.p50_ms,
        "p99" => row.p99_ms,
        _ => row.max_ms,
    }
    .get()
}

pub fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    run: &RunData,
    title: &str,
) -> DrawResult {
    let body = header(
        root,
        title,
        "Latency of the requests completing in each second, measured from when each was due \
         (stalls included). Same log scale for every mode.",
        &super::marker_kinds(run),
    )?;
    let x = super::time_range(run);
    let y = y_range(run);
    for (panel, mode) in mode_panels(&body, run).iter().zip(run.mode_names()) {
        let mut chart = ChartBuilder::on(panel)
            .caption(mode, bold(20))
            .margin(10)
            .margin_right(28)
            .x_label_area_size(48)
            .y_label_area_size(86)
            .build_cartesian_2d(x.clone(), y.clone().log_scale())?;
        time_mesh(&mut chart, "latency (ms, log scale)", &|v| fmt::ms_tick(*v))?;
        // Markers first, so the data is drawn over them.
        draw_markers(
            &chart.plotting_area().strip_coord_spec(),
            &x,
            &markers(run, mode),
        )?;
        let rows: Vec<&SecondRow> = run.seconds_of(mode).collect();
        for (name, color, width) in SERIES {
            let runs = segments(rows.iter().map(|r| {
                (
                    f64::from(r.second) + 0.5,
                    value(r, name).map(|v| v.max(y.start)),
                )
            }));
            let style = color.stroke_width(width);
            for (i, points) in runs.into_iter().enumerate() {
                let series = chart.draw_series(LineSeries::new(points, style))?;
                if i == 0 {
                    series.label(name).legend(move |(lx, ly)| {
                        PathElement::new(vec![(lx, ly), (lx + 22, ly)], color.stroke_width(3))
                    });
                }
            }
        }
        if rows.iter().all(|r| r.max_ms.get().is_none()) {
            panel.draw(&Text::new(
                "no request completed",
                (140, 60),
                font(16).color(&super::MUTED),
            ))?;
        }
        legend(&mut chart, 12, 15)?;
    }
    Ok(())
}

/// One range for every panel: from the smallest positive latency to the largest,
/// padded to whole decades so the log axis reads cleanly.
fn y_range(run: &RunData) -> std::ops::Range<f64> {
    let values = run
        .seconds
        .iter()
        .flat_map(|r| [r.p50_ms, r.p99_ms, r.max_ms])
        .filter_map(|ms| ms.get())
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if hi <= 0.0 {
        return 0.1..1000.0;
    }
    let lo = 10f64.powf(lo.log10().floor()).max(0.01);
    let hi = 10f64.powf((hi * 1.5).log10().ceil());
    lo..hi.max(lo * 100.0)
}
