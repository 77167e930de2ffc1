//! `throughput.png`: requests sent and completed per second (left axis) and every
//! error class per second as stacked bars (right axis), one panel per mode, with the
//! chaos events marked. Errors get their own axis so that ten drops next to ten
//! thousand answers are still visible.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    DrawResult, MUTED, bold, draw_markers, font, header, legend, markers, mode_panels, time_mesh,
};
use crate::outcome::Class;
use crate::report::data::RunData;
use crate::report::fmt;
use crate::runfolder::SecondRow;

const SENT: RGBColor = RGBColor(150, 150, 150);
const COMPLETED: RGBColor = RGBColor(31, 119, 180);

/// Error classes, bottom of the stack first.
const CLASSES: [(&str, RGBColor); 9] = [
    ("refused", RGBColor(214, 39, 40)),
    ("closed", RGBColor(255, 127, 14)),
    ("timeout", RGBColor(140, 86, 75)),
    ("cut", RGBColor(127, 127, 127)),
    ("503", RGBColor(227, 119, 194)),
    ("other 5xx", RGBColor(148, 103, 189)),
    ("other 4xx", RGBColor(188, 189, 34)),
    ("generator error", RGBColor(23, 190, 207)),
    ("TLS error", RGBColor(44, 160, 44)),
];

fn class_counts(r: &SecondRow) -> [u64; 9] {
    [
        Class::Refused,
        Class::Closed,
        Class::Timeout,
        Class::Cut,
        Class::Status503,
        Class::Status5xx,
        Class::Status4xx,
        Class::GeneratorError,
        Class::TlsError,
    ]
    .map(|c| r.counts.class(c))
}

pub fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    run: &RunData,
    title: &str,
) -> DrawResult {
    let body = header(
        root,
        title,
        "Requests sent (due) and completed per second on the left axis; requests that ended \
         in each error class per second, stacked, on the right axis.",
        &super::marker_kinds(run),
    )?;
    let x = super::time_range(run);
    let rate_max = run
        .seconds
        .iter()
        .map(|r| r.counts.sent.max(r.counts.completed()))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.15;
    let error_max = run
        .seconds
        .iter()
        .map(|r| class_counts(r).iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let error_axis = (error_max.max(4) as f64) * 1.15;

    for (panel, mode) in mode_panels(&body, run).iter().zip(run.mode_names()) {
        let mut chart = ChartBuilder::on(panel)
            .caption(mode, bold(20))
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(86)
            .right_y_label_area_size(80)
            .build_cartesian_2d(x.clone(), 0f64..rate_max)?
            .set_secondary_coord(x.clone(), 0f64..error_axis);
        time_mesh(&mut chart, "requests per second", &|v| fmt::axis_count(*v))?;
        chart
            .configure_secondary_axes()
            .label_style(font(14))
            .axis_desc_style(font(15))
            .y_desc("errors per second (stacked)")
            .y_label_formatter(&|v| fmt::axis_count(*v))
            .draw()?;

        // Markers first, so the data is drawn over them.
        draw_markers(
            &chart.plotting_area().strip_coord_spec(),
            &x,
            &markers(run, mode),
        )?;
        let rows: Vec<&SecondRow> = run.seconds_of(mode).collect();
        for (i, (name, color)) in CLASSES.iter().enumerate() {
            let bars = rows.iter().filter_map(|r| {
                let counts = class_counts(r);
                let below: u64 = counts[..i].iter().sum();
                let v = counts[i];
                (v > 0).then(|| {
                    let s = f64::from(r.second);
                    Rectangle::new(
                        [(s, below as f64), (s + 1.0, (below + v) as f64)],
                        color.filled(),
                    )
                })
            });
            let total: u64 = rows.iter().map(|r| class_counts(r)[i]).sum();
            let color = *color;
            let series = chart.draw_secondary_series(bars)?;
            if total > 0 {
                series
                    .label(format!("{name}: {}", fmt::count(total)))
                    .legend(move |(lx, ly)| {
                        Rectangle::new([(lx, ly - 6), (lx + 18, ly + 6)], color.filled())
                    });
            }
        }
        let line = |pick: fn(&SecondRow) -> u64| {
            rows.iter()
                .map(move |r| (f64::from(r.second) + 0.5, pick(r) as f64))
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(LineSeries::new(
                line(|r| r.counts.sent),
                SENT.stroke_width(1),
            ))?
            .label("sent (due)")
            .legend(|(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 22, ly)], SENT.stroke_width(2))
            });
        chart
            .draw_series(LineSeries::new(
                line(|r| r.counts.completed()),
                COMPLETED.stroke_width(2),
            ))?
            .label("completed")
            .legend(|(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 22, ly)], COMPLETED.stroke_width(3))
            });
        if error_max == 0 {
            panel.draw(&Text::new(
                "no errors in any mode",
                (110, 40),
                font(15).color(&MUTED),
            ))?;
        }
        legend(&mut chart, 12, 14)?;
    }
    Ok(())
}
