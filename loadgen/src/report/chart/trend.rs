//! `trend.png`: the history of one scenario, drawn after each run that records to a
//! history: p99, throughput and dropped requests of the last runs (oldest left, each
//! labelled with its commit, or its run id outside git), one row of panels per mode.
//! A failed run's point is hollow. Reads the history's rows, never the run folder:
//! the report shows the file when it is there.

use std::path::Path;

use plotters::prelude::*;

use super::{FONT, GRID, MUTED, TEXT, WIDTH, draw_one, font, mode_color, register_fonts};
use crate::history::RunRow;
use crate::plan::threshold::Metric;
use crate::report::{ChartFile, ReportError};

pub const FILE: &str = "trend.png";
const TITLE: &str = "Trend: this scenario's last runs";
const CAPTION: &str = "p99 latency, throughput and dropped requests of the last runs of this \
                       scenario recorded in the history, oldest left, labelled by commit; a \
                       hollow point is a run that did not pass.";
const ROW_H: u32 = 300;
const HEAD_H: u32 = 70;

/// The three figures drawn, with their axis names.
const PANELS: [(Metric, &str); 3] = [
    (Metric::P99, "p99 (ms)"),
    (Metric::Throughput, "throughput (req/s)"),
    (Metric::Dropped, "dropped requests"),
];

/// The chart as the report lists it, when `dir` has one.
pub fn existing(dir: &Path) -> Option<ChartFile> {
    let path = dir.join(FILE);
    let file = std::fs::File::open(&path).ok()?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let info = decoder.read_info().ok()?;
    let (width, height) = (info.info().width, info.info().height);
    Some(ChartFile {
        path,
        width,
        height,
        title: TITLE.to_string(),
        caption: CAPTION.to_string(),
    })
}

/// Draws `runs` (newest first, as the history lists them) into `path`.
pub fn draw(path: &Path, runs: &[RunRow]) -> Result<(), ReportError> {
    register_fonts()?;
    let runs: Vec<&RunRow> = runs.iter().rev().collect();
    let mut modes: Vec<String> = Vec::new();
    for r in &runs {
        for m in &r.summary.modes {
            if let Some(name) = m.get("mode").and_then(|v| v.as_str())
                && !modes.iter().any(|x| x == name)
            {
                modes.push(name.to_string());
            }
        }
    }
    let height = HEAD_H + ROW_H * (modes.len().max(1) as u32);
    draw_one(path, (WIDTH, height), |root| {
        let (head, body) = root.split_vertically(HEAD_H);
        head.draw(&Text::new(
            TITLE,
            (20, 14),
            (FONT, 24).into_font().color(&TEXT),
        ))?;
        head.draw(&Text::new(
            format!(
                "{} runs of scenario `{}`, oldest left; hollow: did not pass",
                runs.len(),
                runs.last().map(|r| r.scenario.as_str()).unwrap_or("?")
            ),
            (20, 44),
            font(15).color(&MUTED),
        ))?;
        let rows = body.split_evenly((modes.len().max(1), PANELS.len()));
        for (i, mode) in modes.iter().enumerate() {
            for (j, (metric, desc)) in PANELS.iter().enumerate() {
                let area = &rows[i * PANELS.len() + j];
                panel(area, &runs, mode, *metric, desc, mode_color(i))?;
            }
        }
        Ok(())
    })
    .map_err(|e| ReportError::Chart {
        file: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn label(r: &RunRow) -> String {
    match &r.git_commit {
        Some(c) => c[..c.len().min(7)].to_string(),
        None => r.id.get(9..15).unwrap_or(&r.id).to_string(),
    }
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    runs: &[&RunRow],
    mode: &str,
    metric: Metric,
    desc: &str,
    color: RGBColor,
) -> super::DrawResult {
    let points: Vec<(f64, f64, bool)> = runs
        .iter()
        .enumerate()
        .filter_map(|(x, r)| {
            let v = r.summary.figure(mode, None, metric)?;
            Some((x as f64, v, r.verdict == "pass"))
        })
        .collect();
    let top = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let n = runs.len().max(1) as f64;
    let labels: Vec<String> = runs.iter().map(|r| label(r)).collect();
    let mut chart = ChartBuilder::on(&area.margin(8, 8, 8, 8))
        .caption(format!("{mode}: {desc}"), font(16))
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..top)?;
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .bold_line_style(GRID)
        .label_style(font(12))
        .x_labels(runs.len().min(10))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_labels(6)
        .y_label_formatter(&|v| {
            if top <= 5.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        })
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().map(|p| (p.0, p.1)),
        color.stroke_width(2),
    ))?;
    chart.draw_series(points.iter().map(|&(x, y, pass)| {
        let style = if pass {
            color.filled()
        } else {
            color.stroke_width(2)
        };
        Circle::new((x, y), 5, style)
    }))?;
    Ok(())
}
