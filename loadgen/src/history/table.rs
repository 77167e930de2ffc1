//! `loadgen history`'s table: the last runs, newest first, with each mode's p99,
//! dropped requests and throughput, and the verdict.

use std::fmt::Write as _;

use super::RunRow;
use crate::plan::threshold::Metric;

pub fn table(runs: &[RunRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:<16} {:<20} {:<12} {:<10} {:<15} {:<10} {:>10} {:>8} {:>10}",
        "run",
        "scenario",
        "started",
        "commit",
        "branch",
        "verdict",
        "mode",
        "p99 ms",
        "dropped",
        "req/s"
    );
    for r in runs {
        let commit = r
            .git_commit
            .as_deref()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        let branch = r.git_branch.as_deref().unwrap_or("-");
        let modes: Vec<&str> = r
            .summary
            .modes
            .iter()
            .filter_map(|m| m.get("mode").and_then(|v| v.as_str()))
            .collect();
        let fig = |mode: &str, metric: Metric, decimals: usize| {
            r.summary
                .figure(mode, None, metric)
                .map_or("-".to_string(), |v| format!("{v:.decimals$}"))
        };
        if modes.is_empty() {
            let _ = writeln!(
                s,
                "{:<24} {:<16} {:<20} {:<12} {:<10} {:<15}",
                r.id, r.scenario, r.started_at, commit, branch, r.verdict
            );
        }
        for mode in modes {
            let _ = writeln!(
                s,
                "{:<24} {:<16} {:<20} {:<12} {:<10} {:<15} {:<10} {:>10} {:>8} {:>10}",
                r.id,
                r.scenario,
                r.started_at,
                commit,
                branch,
                r.verdict,
                mode,
                fig(mode, Metric::P99, 3),
                fig(mode, Metric::Dropped, 0),
                fig(mode, Metric::Throughput, 1)
            );
        }
    }
    s
}
