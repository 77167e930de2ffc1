//! Chaos events drawn over the time charts: which events become markers (deploys,
//! kills, pauses shaded until their resume, server restarts; never the worker
//! start/exit noise), their colours and labels, and the key in each chart's header.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DrawResult, MUTED, WIDTH, bold, font};
use crate::observe::events::Kind;
use crate::report::data::RunData;
use crate::runfolder::EventKind;

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
                EventKind::Known(Kind::Deploy) => MarkerKind::Deploy,
                EventKind::Known(Kind::Kill) => MarkerKind::Kill,
                EventKind::Known(Kind::Pause) => MarkerKind::Pause,
                EventKind::Known(Kind::ServerRestarted) => MarkerKind::Restart,
                _ => return None,
            };
            let until_s = (kind == MarkerKind::Pause).then(|| {
                events[i + 1..]
                    .iter()
                    .find(|r| {
                        r.kind == EventKind::Known(Kind::Resume)
                            && (r.pid == e.pid || e.pid.is_none())
                    })
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

/// The key to the chaos markers present in the run, right-aligned on the title line.
pub fn draw_key<DB: DrawingBackend>(
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
