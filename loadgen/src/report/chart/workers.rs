//! `workers.png`: per mode, the answers per second stacked by the worker process that
//! sent them (one band per PID, a colour per PID within its version's family, the
//! legend naming the PIDs that answered most: see `worker_bands`) on the left axis,
//! and the live worker count on the right axis, with the chaos events marked. A
//! deploy shows as bands of the new version taking over from the old.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::worker_bands::bands;
use super::{
    DrawResult, bold, draw_markers, font, header, legend, markers, mode_panels, time_mesh,
};
use crate::report::data::RunData;
use crate::report::fmt;
use crate::runfolder::WorkerRow;

const LIVE: RGBColor = RGBColor(20, 20, 20);

pub fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    run: &RunData,
    title: &str,
) -> DrawResult {
    let body = header(
        root,
        title,
        "Answers per second stacked by the worker process that sent them (a colour per PID, one \
         colour family per code version); the black line is the number of live workers.",
        &super::marker_kinds(run),
    )?;
    let x = super::time_range(run);
    let seconds = x.end.ceil() as usize;
    let mut answers_max = 1u64;
    let mut per_mode = Vec::new();
    for mode in run.mode_names() {
        let rows: Vec<&WorkerRow> = run.workers.iter().filter(|w| w.mode == mode).collect();
        let (_, bands) = bands(&rows, seconds);
        for s in 0..seconds {
            answers_max = answers_max.max(bands.iter().map(|b| b.per_second[s]).sum());
        }
        per_mode.push((mode, bands));
    }
    let live_max = run
        .seconds
        .iter()
        .filter_map(|r| r.live_workers)
        .max()
        .unwrap_or(1)
        .max(1);

    for (panel, (mode, bands)) in mode_panels(&body, run).iter().zip(per_mode) {
        // Room above the data for the legend (one line per band, plus the live line).
        let plot_h = f64::from(panel.dim_in_pixel().1.saturating_sub(110).max(60));
        let legend_h = (bands.len() as f64 + 1.0) * 17.0 + 16.0;
        let data_share = (1.0 - legend_h / plot_h).clamp(0.35, 0.87);
        let mut chart = ChartBuilder::on(panel)
            .caption(mode, bold(20))
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(86)
            .right_y_label_area_size(80)
            .build_cartesian_2d(x.clone(), 0f64..answers_max as f64 / data_share)?
            .set_secondary_coord(x.clone(), 0f64..f64::from(live_max) * 1.5 + 0.5);
        time_mesh(&mut chart, "answers per second", &|v| fmt::axis_count(*v))?;
        chart
            .configure_secondary_axes()
            .label_style(font(14))
            .axis_desc_style(font(15))
            .y_desc("live workers")
            .y_labels((f64::from(live_max) * 1.5 + 0.5) as usize + 1)
            .y_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .draw()?;

        // Markers first, so the data is drawn over them.
        draw_markers(
            &chart.plotting_area().strip_coord_spec(),
            &x,
            &markers(run, mode),
        )?;
        let mut below = vec![0u64; seconds];
        for band in &bands {
            let upper: Vec<u64> = below
                .iter()
                .zip(&band.per_second)
                .map(|(b, v)| b + v)
                .collect();
            let mut outline: Vec<(f64, f64)> = Vec::with_capacity(seconds * 4);
            for (s, &u) in upper.iter().enumerate() {
                outline.push((s as f64, u as f64));
                outline.push((s as f64 + 1.0, u as f64));
            }
            for (s, &b) in below.iter().enumerate().rev() {
                outline.push((s as f64 + 1.0, b as f64));
                outline.push((s as f64, b as f64));
            }
            let color = band.color;
            chart
                .draw_series(std::iter::once(Polygon::new(outline, color.filled())))?
                .label(band.label.clone())
                .legend(move |(lx, ly)| {
                    Rectangle::new([(lx, ly - 6), (lx + 18, ly + 6)], color.filled())
                });
            below = upper;
        }
        let live = live_series(run, mode);
        chart
            .draw_secondary_series(LineSeries::new(live.points, LIVE.stroke_width(3)))?
            .label(live.label)
            .legend(|(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 22, ly)], LIVE.stroke_width(3))
            });
        legend(&mut chart, 12, 13)?;
    }
    Ok(())
}

struct Live {
    points: Vec<(f64, f64)>,
    label: &'static str,
}

/// The live-worker step line from timeseries.csv; when no process watcher ran, the
/// number of distinct PIDs that answered in each second stands in, and says so.
fn live_series(run: &RunData, mode: &str) -> Live {
    let rows: Vec<_> = run.seconds_of(mode).collect();
    let mut points = Vec::new();
    if rows.iter().any(|r| r.live_workers.is_some()) {
        for r in rows {
            if let Some(n) = r.live_workers {
                let s = f64::from(r.second);
                points.push((s, f64::from(n)));
                points.push((s + 1.0, f64::from(n)));
            }
        }
        return Live {
            points,
            label: "live workers",
        };
    }
    let mut answering: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for w in run
        .workers
        .iter()
        .filter(|w| w.mode == mode && w.responses > 0)
    {
        answering.entry(w.second).or_default().push(w.worker_pid);
    }
    for (s, mut pids) in answering {
        pids.sort_unstable();
        pids.dedup();
        points.push((f64::from(s), pids.len() as f64));
        points.push((f64::from(s) + 1.0, pids.len() as f64));
    }
    Live {
        points,
        label: "workers answering (no watcher data)",
    }
}
