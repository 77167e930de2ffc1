//! The run as Markdown for a CI job page: appended to the file `GITHUB_STEP_SUMMARY`
//! names (GitHub Actions shows it on the job's summary), and the same table used by
//! `loadgen compare`'s page. The verdict, each mode's headline figures, every
//! threshold with its measured value, and the invariants that did not hold.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::runfolder::summary_json::RunSummary;

/// Appends the summary of `run` to `file` (created if missing).
pub fn append(file: &Path, run: &RunSummary) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(markdown(run).as_bytes())
}

/// The Markdown.
pub fn markdown(run: &RunSummary) -> String {
    let mut s = String::new();
    let icon = match run.verdict.as_str() {
        "pass" => "✅",
        _ => "❌",
    };
    let _ = writeln!(
        s,
        "## {icon} loadgen `{}`: {}\n",
        run.scenario.name,
        run.verdict.as_str()
    );
    let commit = run
        .git
        .as_ref()
        .map(|g| format!(", commit `{}`", &g.commit[..g.commit.len().min(12)]))
        .unwrap_or_default();
    let _ = writeln!(s, "Run `{}`{commit}.", run.run_id);
    if let Some(b) = &run.baseline {
        let _ = writeln!(s, "Baseline: {b}.");
    }
    let _ = writeln!(
        s,
        "\n| mode | requests | dropped | failed | p50 ms | p99 ms | max ms | req/s |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in run
        .summary
        .iter()
        .filter(|r| r.get("step").and_then(Value::as_str) == Some("all"))
    {
        let cell = |k: &str| match row.get(k) {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(t)) => t.clone(),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell("mode"),
            cell("requests"),
            cell("dropped"),
            cell("failed"),
            cell("p50_ms"),
            cell("p99_ms"),
            cell("max_ms"),
            cell("throughput_rps")
        );
    }
    if !run.thresholds.is_empty() {
        let _ = writeln!(s, "\n| threshold | measured | verdict |");
        let _ = writeln!(s, "|---|---|---|");
        for t in &run.thresholds {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                t.threshold,
                t.text,
                t.verdict.replace('_', " ")
            );
        }
    }
    let broken: Vec<String> = run
        .invariants
        .iter()
        .filter(|i| i.get("holds").and_then(Value::as_bool) != Some(true))
        .map(|i| {
            let t = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            format!(
                "- {} `{}`: expected {}, measured {}",
                t("mode"),
                t("check"),
                t("expected"),
                t("actual")
            )
        })
        .collect();
    if !broken.is_empty() {
        let _ = writeln!(s, "\nInvariants that did not hold:\n{}", broken.join("\n"));
    }
    for f in &run.harness_failures {
        let _ = writeln!(s, "\n> harness: {f}");
    }
    s.push('\n');
    s
}
