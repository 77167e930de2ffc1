//! The bands of `workers.png` and their legend: one band per worker process, a colour
//! family (a hue) per code version and, within a family, a distinct lightness per
//! process, so five workers of one version are five colours. The legend names the
//! [`NAMED`] processes that answered most (PID, version, answers); the rest of each
//! version are merged into one "others" band that says how many processes it holds.
//! Nothing is dropped: the bands add up to every answer of `workers.csv`.

use std::collections::BTreeMap;

use plotters::style::{Color, HSLColor, RGBColor};

use crate::report::fmt;
use crate::runfolder::WorkerRow;

/// Processes the legend names, per mode; the others are one band per version.
pub const NAMED: usize = 6;

/// Hue of each version's family, in order of first appearance: blue, orange, green,
/// purple.
const HUES: [f64; 4] = [0.58, 0.07, 0.36, 0.75];

/// One stacked band: a process, or the other processes of a version.
#[derive(Debug, Clone)]
pub struct Band {
    /// `None`: the version's other processes. (What the band is; the chart only
    /// needs its colour and label, the tests check it.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub pid: Option<u32>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub version_index: usize,
    pub per_second: Vec<u64>,
    pub color: RGBColor,
    pub label: String,
}

struct Worker {
    pid: u32,
    version_index: usize,
    first_second: u32,
    total: u64,
    per_second: Vec<u64>,
}

/// The versions in order of first appearance, and the bands stacked bottom to top:
/// by version, then by when the process first answered, the version's others last.
/// Each PID keeps the version it first answered with.
pub fn bands(rows: &[&WorkerRow], seconds: usize) -> (Vec<String>, Vec<Band>) {
    let mut versions: Vec<String> = Vec::new();
    let mut workers: BTreeMap<u32, Worker> = BTreeMap::new();
    let mut ordered: Vec<&&WorkerRow> = rows.iter().collect();
    ordered.sort_by_key(|r| (r.second, r.worker_pid));
    for r in ordered {
        let version_index = match versions.iter().position(|v| *v == r.version) {
            Some(i) => i,
            None => {
                versions.push(r.version.clone());
                versions.len() - 1
            }
        };
        let w = workers.entry(r.worker_pid).or_insert_with(|| Worker {
            pid: r.worker_pid,
            version_index,
            first_second: r.second,
            total: 0,
            per_second: vec![0; seconds],
        });
        w.total += r.responses;
        if let Some(slot) = w.per_second.get_mut(r.second as usize) {
            *slot += r.responses;
        }
    }
    let mut by_answers: Vec<&Worker> = workers.values().collect();
    by_answers.sort_by_key(|w| (std::cmp::Reverse(w.total), w.pid));
    // Naming all but one process and merging the last alone would hide nothing.
    let named_count = if by_answers.len() <= NAMED + 1 {
        by_answers.len()
    } else {
        NAMED
    };
    let named: Vec<u32> = by_answers[..named_count].iter().map(|w| w.pid).collect();

    let mut out = Vec::new();
    for (vi, version) in versions.iter().enumerate() {
        let mut mine: Vec<&Worker> = workers
            .values()
            .filter(|w| w.version_index == vi && named.contains(&w.pid))
            .collect();
        mine.sort_by_key(|w| (w.first_second, w.pid));
        let shades = spread(mine.len());
        for (i, (w, lightness)) in mine.iter().zip(shades).enumerate() {
            out.push(Band {
                pid: Some(w.pid),
                version_index: vi,
                per_second: w.per_second.clone(),
                color: shade(vi, lightness, i),
                label: format!("pid {} ({version}): {} answers", w.pid, fmt::count(w.total)),
            });
        }
        let rest: Vec<&Worker> = workers
            .values()
            .filter(|w| w.version_index == vi && !named.contains(&w.pid))
            .collect();
        if rest.is_empty() {
            continue;
        }
        let mut per_second = vec![0; seconds];
        for w in &rest {
            for (sum, v) in per_second.iter_mut().zip(&w.per_second) {
                *sum += v;
            }
        }
        let total: u64 = rest.iter().map(|w| w.total).sum();
        out.push(Band {
            pid: None,
            version_index: vi,
            per_second,
            color: others(vi),
            label: format!(
                "{} other process{} ({version}): {} answers",
                rest.len(),
                if rest.len() == 1 { "" } else { "es" },
                fmt::count(total)
            ),
        });
    }
    (versions, out)
}

/// `n` lightness values from dark to light, ordered so that neighbouring bands are
/// far apart (dark, light, dark, light ...).
fn spread(n: usize) -> Vec<f64> {
    let (dark, light) = (0.28, 0.72);
    let even: Vec<f64> = (0..n)
        .map(|i| match n {
            1 => 0.45,
            _ => dark + (light - dark) * i as f64 / (n - 1) as f64,
        })
        .collect();
    let half = n.div_ceil(2);
    (0..n)
        .map(|i| match i % 2 {
            0 => even[i / 2],
            _ => even[half + i / 2],
        })
        .collect()
}

/// The `i`th process of a version: its lightness, and the family's hue nudged a little
/// either way so that two processes of equal lightness still differ.
fn shade(version_index: usize, lightness: f64, i: usize) -> RGBColor {
    let nudge = [0.0, 0.035, -0.035][i % 3];
    let hue = (HUES[version_index % HUES.len()] + nudge).rem_euclid(1.0);
    let (r, g, b) = HSLColor(hue, 0.7, lightness).rgb();
    RGBColor(r, g, b)
}

/// The "others" band of a version: its hue, pale and greyed.
fn others(version_index: usize) -> RGBColor {
    let hue = HUES[version_index % HUES.len()];
    let (r, g, b) = HSLColor(hue, 0.15, 0.82).rgb();
    RGBColor(r, g, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(version: &str, pids: std::ops::Range<u32>, from: u32) -> Vec<WorkerRow> {
        pids.flat_map(|pid| {
            (from..from + 3).map(move |second| WorkerRow {
                mode: "m".into(),
                second,
                worker_pid: pid,
                version: version.into(),
                // Higher PIDs answer more, so the top ones are known.
                responses: u64::from(pid),
            })
        })
        .collect()
    }

    fn total(bands: &[Band]) -> u64 {
        bands.iter().flat_map(|b| &b.per_second).sum()
    }

    #[test]
    fn five_workers_of_one_version_are_five_colours_each_named() {
        let data = rows("v1", 100..105, 0);
        let refs: Vec<&WorkerRow> = data.iter().collect();
        let (versions, bands) = bands(&refs, 10);
        assert_eq!(versions, ["v1"]);
        assert_eq!(bands.len(), 5);
        let mut colors: Vec<(u8, u8, u8)> = bands.iter().map(|b| b.color.rgb()).collect();
        colors.sort_unstable();
        colors.dedup();
        assert_eq!(colors.len(), 5, "{bands:?}");
        for pid in 100..105 {
            assert!(
                bands
                    .iter()
                    .any(|b| b.label.starts_with(&format!("pid {pid} (v1)"))),
                "{bands:?}"
            );
        }
        assert_eq!(total(&bands), data.iter().map(|r| r.responses).sum::<u64>());
    }

    #[test]
    fn past_the_named_ones_the_rest_of_a_version_is_one_band_and_nothing_is_lost() {
        let mut data = rows("v1", 100..106, 0);
        data.extend(rows("v2", 200..206, 3));
        let refs: Vec<&WorkerRow> = data.iter().collect();
        let (versions, bands) = bands(&refs, 10);
        assert_eq!(versions, ["v1", "v2"]);
        let named: Vec<u32> = bands.iter().filter_map(|b| b.pid).collect();
        // The six that answered most are v2's.
        assert_eq!(named, (200..206).collect::<Vec<_>>());
        let others: Vec<&Band> = bands.iter().filter(|b| b.pid.is_none()).collect();
        assert_eq!(others.len(), 1);
        assert!(
            others[0].label.starts_with("6 other processes (v1)"),
            "{others:?}"
        );
        assert_eq!(total(&bands), data.iter().map(|r| r.responses).sum::<u64>());
        // Two families: no v2 colour is a v1 colour.
        let v1: Vec<_> = bands
            .iter()
            .filter(|b| b.version_index == 0)
            .map(|b| b.color.rgb())
            .collect();
        assert!(
            bands
                .iter()
                .filter(|b| b.version_index == 1)
                .all(|b| !v1.contains(&b.color.rgb()))
        );
    }

    #[test]
    fn neighbouring_shades_are_far_apart() {
        let s = spread(5);
        assert_eq!(s.len(), 5);
        for pair in s.windows(2) {
            assert!((pair[0] - pair[1]).abs() > 0.15, "{s:?}");
        }
    }
}
