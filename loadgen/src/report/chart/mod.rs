//! The four PNG charts and what they share: the embedded font, the page layout (a
//! header with title, subtitle and the chaos-marker key, then one panel per mode),
//! the colours, and the chaos-event markers drawn over every time chart. Each chart
//! lives in its own file and only decides what to plot.

mod latency;
mod percentiles;
mod throughput;
mod workers;

use std::error::Error;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::data::{EventKind, RunData};
use super::{ChartFile, ReportError};

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
        draw_marker_key(&top, marker_kinds)?;
    }
    Ok(body)
}

/// The key to the chaos markers present in the run, right-aligned on the title line.
fn draw_marker_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    kinds: &[MarkerKind],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut x = WIDTH as i32 - 24;
    for kind in kinds.iter().rev() {
        let label = kind.key_label();
        let (w, _) = area.estimate_text_size(label, &font(15))?;
        x -= w as i32;
        area.draw(&Text::new(label, (x, 22), font(15)))?;
        x -= 14;
        if *kind == MarkerKind::Pause {
            area.draw(&Rectangle::new(
                [(x - 4, 18), (x + 8, 38)],
                kind.color().mix(0.25).filled(),
            ))?;
        }
        area.draw(&PathElement::new(
            vec![(x, 16), (x, 40)],
            kind.color().stroke_width(3),
        ))?;
        x -= 26;
    }
    area.draw(&Text::new(
        "chaos events:",
        (x - 100, 22),
        font(15).color(&MUTED),
    ))?;
    Ok(())
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

/// A chaos event as drawn over a time chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MarkerKind {
    Deploy,
    Kill,
    /// A pause, shaded until its resume.
    Pause,
    Restart,
}

impl MarkerKind {
    pub fn color(self) -> RGBColor {
        match self {
            Self::Deploy => RGBColor(123, 50, 148),
            Self::Kill => RGBColor(190, 20, 20),
            Self::Pause => RGBColor(225, 150, 0),
            Self::Restart => RGBColor(30, 140, 60),
        }
    }
    fn label(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::Restart => "restarted",
        }
    }
    fn key_label(self) -> &'static str {
        match self {
            Self::Pause => "pause (shaded until resume)",
            Self::Restart => "server restarted",
            other => other.label(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub t_s: f64,
    pub kind: MarkerKind,
    /// For a pause: when it was resumed (or the end of the chart).
    pub until_s: Option<f64>,
}

/// The chaos markers of one mode: deploys, kills, pauses and restarts. Worker starts
/// and exits are left out: they are the noise the markers explain.
pub fn markers(run: &RunData, mode: &str) -> Vec<Marker> {
    let events: Vec<_> = run.events_of(mode).collect();
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let kind = match e.kind {
                EventKind::Deploy => MarkerKind::Deploy,
                EventKind::Kill => MarkerKind::Kill,
                EventKind::Pause => MarkerKind::Pause,
                EventKind::ServerRestarted => MarkerKind::Restart,
                _ => return None,
            };
            let until_s = (kind == MarkerKind::Pause).then(|| {
                events[i + 1..]
                    .iter()
                    .find(|r| r.kind == EventKind::Resume && (r.pid == e.pid || e.pid.is_none()))
                    .map_or(e.t_s + 1.0, |r| r.t_s)
            });
            Some(Marker {
                t_s: e.t_s,
                kind,
                until_s,
            })
        })
        .collect()
}

/// The marker kinds that occur in any mode of the run, in key order.
pub fn marker_kinds(run: &RunData) -> Vec<MarkerKind> {
    let present: Vec<MarkerKind> = run
        .mode_names()
        .into_iter()
        .flat_map(|mode| markers(run, mode))
        .map(|m| m.kind)
        .collect();
    [
        MarkerKind::Deploy,
        MarkerKind::Kill,
        MarkerKind::Pause,
        MarkerKind::Restart,
    ]
    .into_iter()
    .filter(|k| present.contains(k))
    .collect()
}

/// Draw markers over a panel's plotting area (pixel space, x mapped from seconds).
/// Labels go on up to three staggered rows; a label that would overlap every row is
/// left out (its line and colour still say what it is).
pub fn draw_markers<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    x: &Range<f64>,
    markers: &[Marker],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (w, h) = plot.dim_in_pixel();
    let px = |t: f64| ((t - x.start) / (x.end - x.start) * f64::from(w)).round() as i32;
    let h = h as i32;
    for m in markers.iter().filter(|m| m.kind == MarkerKind::Pause) {
        let (a, b) = (px(m.t_s), px(m.until_s.unwrap_or(m.t_s)).max(px(m.t_s) + 2));
        plot.draw(&Rectangle::new(
            [(a, 0), (b, h)],
            m.kind.color().mix(0.18).filled(),
        ))?;
    }
    const ROWS: usize = 3;
    let mut row_end = [i32::MIN; ROWS];
    for m in markers {
        let color = m.kind.color();
        let label_style = bold(13).color(&color);
        let at = px(m.t_s);
        plot.draw(&PathElement::new(
            vec![(at, 0), (at, h)],
            m.kind.color().mix(0.6).stroke_width(2),
        ))?;
        let (tw, _) = plot.estimate_text_size(m.kind.label(), &label_style)?;
        let left = (at + 4).min(w as i32 - tw as i32 - 2);
        if let Some(row) = (0..ROWS).find(|&r| row_end[r] < left) {
            let y = 4 + 16 * row as i32;
            plot.draw(&Rectangle::new(
                [(left - 1, y - 1), (left + tw as i32 + 1, y + 14)],
                WHITE.mix(0.8).filled(),
            ))?;
            plot.draw(&Text::new(m.kind.label(), (left, y), label_style.clone()))?;
            row_end[row] = left + tw as i32 + 6;
        }
    }
    Ok(())
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
