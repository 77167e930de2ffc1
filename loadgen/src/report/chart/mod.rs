//! The four PNG charts and what they share: the embedded font, the page layout (a
//! header with title, subtitle and the chaos-marker key, then one panel per mode),
//! the colours, and the chaos-event markers drawn over every time chart. Each chart
//! lives in its own file and only decides what to plot.

mod latency;
mod markers;
pub mod overlay;
mod percentiles;
mod throughput;
pub mod trend;
mod worker_bands;
mod workers;

use std::error::Error;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::data::RunData;
use super::{ChartFile, ReportError};

pub use markers::{MarkerKind, draw_markers, marker_kinds, markers};

/// Chart width in pixels; heights follow the number of panels.
pub const WIDTH: u32 = 1400;
const HEADER_H: u32 = 96;
const PANEL_H: u32 = 400;
const MIN_H: u32 = 760;
/// The only font family drawn with; registered from the embedded DejaVu Sans.
pub const FONT: &str = "sans-serif";

pub type DrawResult = Result<(), Box<dyn Error>>;

pub const GRID: RGBColor = RGBColor(232, 232, 232);
pub const TEXT: RGBColor = RGBColor(40, 40, 40);
pub const MUTED: RGBColor = RGBColor(110, 110, 110);

/// Colours per mode, in `modes.csv` order (single is usually first).
const MODE_COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub fn mode_color(index: usize) -> RGBColor {
    MODE_COLORS[index % MODE_COLORS.len()]
}

/// Draw every chart into the run directory.
pub fn draw_all(run: &RunData) -> Result<Vec<ChartFile>, ReportError> {
    register_fonts()?;
    let panels = run.modes.len() as u32;
    let time_h = (HEADER_H + PANEL_H * panels).max(MIN_H);
    let specs: [Spec; 4] = [
        Spec {
            file: "latency.png",
            title: "Latency over time: p50, p99 and max per second",
            caption: "Latency of the requests completing in each second, one panel per mode on \
                      the same log scale. A deploy or kill that costs nothing leaves no mark \
                      on these lines; a stall shows as a wall.",
            height: time_h,
            draw: latency::draw,
        },
        Spec {
            file: "throughput.png",
            title: "Throughput and errors over time",
            caption: "Requests due and completed per second, with every error class stacked on \
                      the right axis: dropped requests appear as red, orange and brown bars at \
                      the chaos events that caused them.",
            height: time_h,
            draw: throughput::draw,
        },
        Spec {
            file: "percentiles.png",
            title: "Latency percentile distribution",
            caption: "Both modes' latency distributions over the whole run, HdrHistogram style: \
                      the further right, the rarer the request; the curve's end is the slowest.",
            height: MIN_H,
            draw: percentiles::draw,
        },
        Spec {
            file: "workers.png",
            title: "Workers alive and their share of the answers",
            caption: "Answers per second by the process that sent them, one band per PID and a \
                      colour family per code version, and the live worker count: a rolling \
                      deploy shows as the new version's bands taking over.",
            height: time_h,
            draw: workers::draw,
        },
    ];
    let mut charts = Vec::with_capacity(specs.len());
    for spec in specs {
        let path = run.dir.join(spec.file);
        let (title, draw) = (spec.title, spec.draw);
        draw_one(&path, (WIDTH, spec.height), |root| draw(root, run, title)).map_err(|e| {
            ReportError::Chart {
                file: path.clone(),
                message: e.to_string(),
            }
        })?;
        charts.push(ChartFile {
            path,
            width: WIDTH,
            height: spec.height,
            title: title.to_string(),
            caption: spec.caption.to_string(),
        });
    }
    // Drawn from the history after a run that records to one, not from this folder.
    charts.extend(trend::existing(&run.dir));
    Ok(charts)
}

/// One chart: its file, words and drawing function.
struct Spec {
    file: &'static str,
    title: &'static str,
    caption: &'static str,
    height: u32,
    draw: ChartFn,
}

type ChartFn = fn(&DrawingArea<BitMapBackend<'_>, Shift>, &RunData, &str) -> DrawResult;

fn draw_one(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
) -> DrawResult {
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    draw(&root)?;
    // Errors at drop are swallowed: present explicitly so a failed write is reported.
    root.present()?;
    Ok(())
}

/// Register DejaVu Sans (regular and bold) under [`FONT`], once per process.
fn register_fonts() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let fonts = [
                (FontStyle::Normal, "regular", dejavu::sans::regular()),
                (FontStyle::Bold, "bold", dejavu::sans::bold()),
            ];
            for (style, name, bytes) in fonts {
                plotters::style::register_font(FONT, style, bytes)
                    .map_err(|_| format!("DejaVu Sans {name} is not a valid font"))?;
            }
            Ok(())
        })
        .clone()
        .map_err(ReportError::Font)
}

/// The grid and axes of a chart over time: seconds on x, `y_desc` on y.
pub fn time_mesh<'a, 'b: 'a, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    y_desc: &str,
    y_label: &dyn Fn(&f64) -> String,
) -> DrawResult
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .bold_line_style(GRID)
        .label_style(font(14))
        .axis_desc_style(font(15))
        .x_desc("seconds since the start of load")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc(y_desc)
        .y_label_formatter(y_label)
        .draw()?;
    Ok(())
}

/// The series legend every chart draws in its panel's upper-left corner.
pub fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    margin: u32,
    size: u32,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(margin)
        .label_font(font(size))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .draw()?;
    Ok(())
}

pub fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&TEXT)
}

pub fn bold(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().style(FontStyle::Bold).color(&TEXT)
}

/// Split the chart into its header (title, subtitle, marker key) and its body.
pub fn header<'a>(
    root: &DrawingArea<BitMapBackend<'a>, Shift>,
    title: &str,
    subtitle: &str,
    marker_kinds: &[MarkerKind],
) -> Result<DrawingArea<BitMapBackend<'a>, Shift>, Box<dyn Error>> {
    let (top, body) = root.split_vertically(HEADER_H);
    top.draw(&Text::new(title.to_string(), (24, 14), bold(28)))?;
    top.draw(&Text::new(
        subtitle.to_string(),
        (24, 54),
        font(16).color(&MUTED),
    ))?;
    if !marker_kinds.is_empty() {
        markers::draw_key(&top, marker_kinds)?;
    }
    Ok(body)
}

/// The panels of a per-mode chart, one per mode, top to bottom.
pub fn mode_panels<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    run: &RunData,
) -> Vec<DrawingArea<DB, Shift>> {
    body.split_evenly((run.modes.len().max(1), 1))
}

/// Seconds shown on every time axis: the longest mode, so panels line up.
pub fn time_range(run: &RunData) -> Range<f64> {
    let last_second = run.seconds.iter().map(|s| s.second).max().unwrap_or(0);
    let last_event = run.events.iter().map(|e| e.t_s).fold(0.0, f64::max);
    let end = (f64::from(last_second) + 1.0).max(last_event.ceil() + 1.0);
    0.0..end.max(10.0)
}

/// Split a series with gaps (seconds without a value) into drawable runs.
pub fn segments(points: impl IntoIterator<Item = (f64, Option<f64>)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (x, y) in points {
        match y {
            Some(y) if y.is_finite() => current.push((x, y)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
