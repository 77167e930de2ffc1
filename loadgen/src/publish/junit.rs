//! `--junit FILE`: the gate as JUnit XML, the format Jenkins, GitLab and most CI
//! systems read. One test suite per run, one test case per threshold verdict and per
//! invariant check; a breached threshold or a broken invariant is a `<failure>` whose
//! message carries the measured value; a threshold without a baseline is `<skipped>`.
//! One more test case, `harness`, is an `<error>` when loadgen could not measure the
//! run faithfully (a conservation check, lateness, a lost shard, an unwritable history,
//! an interrupt): then the thresholds' passes mean nothing, and CI must see that.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::runfolder::summary_json::RunSummary;

/// Writes the JUnit file of `run`.
pub fn write(file: &Path, run: &RunSummary) -> std::io::Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, xml(run))
}

/// The document.
pub fn xml(run: &RunSummary) -> String {
    let mut cases = String::new();
    let (mut tests, mut failures, mut skipped, mut errors) = (1, 0, 0, 0);
    let suite = format!("loadgen.{}", run.scenario.name);
    let _ = writeln!(
        cases,
        "    <testcase classname=\"{}.harness\" name=\"measured faithfully\">",
        esc(&suite)
    );
    let mut problems = run.harness_failures.clone();
    if run.verdict.as_str() == "interrupted" {
        problems.push("interrupted before the end of the run".to_string());
    }
    if !problems.is_empty() {
        errors += 1;
        let _ = writeln!(
            cases,
            "      <error type=\"harness\" message=\"{}\">{}</error>",
            esc(&problems[0]),
            esc(&problems.join("\n"))
        );
    }
    cases.push_str("    </testcase>\n");
    for t in &run.thresholds {
        tests += 1;
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}.thresholds\" name=\"{}\">",
            esc(&suite),
            esc(&t.threshold)
        );
        match t.verdict.as_str() {
            "pass" => {}
            "no_baseline" => {
                skipped += 1;
                let _ = writeln!(
                    cases,
                    "      <skipped message=\"no baseline: {}\"/>",
                    esc(&t.text)
                );
            }
            _ => {
                failures += 1;
                let _ = writeln!(
                    cases,
                    "      <failure type=\"threshold\" message=\"{} breached: measured {}\">measured: {}</failure>",
                    esc(&t.threshold),
                    esc(&t.text),
                    esc(&t.text)
                );
            }
        }
        cases.push_str("    </testcase>\n");
    }
    for inv in &run.invariants {
        tests += 1;
        let text = |k: &str| inv.get(k).and_then(Value::as_str).unwrap_or("");
        let name = format!("{}.{}", text("mode"), text("check"));
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}.invariants\" name=\"{}\">",
            esc(&suite),
            esc(&name)
        );
        if inv.get("holds").and_then(Value::as_bool) != Some(true) {
            failures += 1;
            let message = format!("expected {}, measured {}", text("expected"), text("actual"));
            let _ = writeln!(
                cases,
                "      <failure type=\"invariant\" message=\"{}\">{}</failure>",
                esc(&message),
                esc(&message)
            );
        }
        cases.push_str("    </testcase>\n");
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"loadgen\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"{errors}\" timestamp=\"{}\">",
        esc(&suite),
        esc(&run.started_at)
    );
    let _ = writeln!(out, "    <properties>");
    let mut prop = |k: &str, v: &str| {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            esc(k),
            esc(v)
        );
    };
    prop("run_id", &run.run_id);
    prop("verdict", run.verdict.as_str());
    if let Some(git) = &run.git {
        prop("git_commit", &git.commit);
    }
    if let Some(b) = &run.baseline {
        prop("baseline", b);
    }
    let _ = writeln!(out, "    </properties>");
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// XML attribute and text escaping.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}
