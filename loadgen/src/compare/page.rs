//! The comparison page of `loadgen compare`, in Markdown and in a self-contained HTML
//! file with the same table: each figure, A, B, the change and the relative change.

use std::fmt::Write as _;

use super::{Row, Side};

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn change(r: &Row) -> (String, String) {
    match r.change() {
        None => ("-".into(), "-".into()),
        Some((d, rel)) => (
            format!("{}{}", if d > 0.0 { "+" } else { "" }, num(Some(d))),
            rel.map_or("-".into(), |p| format!("{p:+.1}%")),
        ),
    }
}

fn heading(a: &Side, b: &Side) -> Vec<String> {
    let who = |s: &Side| {
        let commit = s
            .summary
            .git
            .as_ref()
            .map(|g| format!(", commit {}", &g.commit[..g.commit.len().min(12)]))
            .unwrap_or_default();
        format!(
            "{}: {} (run {}, scenario {}, {}, verdict {}{commit})",
            s.label,
            s.name,
            s.summary.run_id,
            s.summary.scenario.name,
            s.summary.started_at,
            s.summary.verdict.as_str()
        )
    };
    vec![who(a), who(b)]
}

/// The Markdown page.
pub fn markdown(a: &Side, b: &Side, rows: &[Row], chart: bool) -> String {
    let mut s = String::from("# loadgen compare\n\n");
    for line in heading(a, b) {
        let _ = writeln!(s, "- {line}");
    }
    if chart {
        let _ = writeln!(
            s,
            "\n![Latency distributions, A against B]({})",
            crate::report::chart::overlay::FILE
        );
    }
    let mut group = None;
    for r in rows {
        let key = (r.group.as_str(), r.mode.as_str());
        if group != Some(key) {
            group = Some(key);
            let title = match r.group.as_str() {
                "modes" => format!("{}: the mode as a whole", r.mode),
                "thresholds" => "thresholds (measured values)".to_string(),
                step => format!("{}: step {step}", r.mode),
            };
            let _ = writeln!(s, "\n## {title}\n");
            let _ = writeln!(s, "| figure | A | B | change | change % |");
            let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        }
        let (d, rel) = change(r);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {d} | {rel} |",
            r.figure,
            num(r.a),
            num(r.b)
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML page: the same content, one file (the chart is linked beside it).
pub fn html(a: &Side, b: &Side, rows: &[Row], chart: bool) -> String {
    let mut s = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>loadgen compare</title>\n\
         <style>body{font-family:sans-serif;margin:2em;color:#282828}\
         table{border-collapse:collapse;margin-bottom:1.5em}\
         td,th{border:1px solid #ddd;padding:3px 8px}td.n{text-align:right}\
         img{max-width:100%}</style></head><body>\n<h1>loadgen compare</h1>\n<ul>\n",
    );
    for line in heading(a, b) {
        let _ = writeln!(s, "<li>{}</li>", esc(&line));
    }
    s.push_str("</ul>\n");
    if chart {
        let _ = writeln!(
            s,
            "<img src=\"{}\" alt=\"Latency distributions, A against B\">",
            crate::report::chart::overlay::FILE
        );
    }
    let mut group = None;
    for r in rows {
        let key = (r.group.as_str(), r.mode.as_str());
        if group != Some(key) {
            if group.is_some() {
                s.push_str("</table>\n");
            }
            group = Some(key);
            let title = match r.group.as_str() {
                "modes" => format!("{}: the mode as a whole", r.mode),
                "thresholds" => "thresholds (measured values)".to_string(),
                step => format!("{}: step {step}", r.mode),
            };
            let _ = writeln!(
                s,
                "<h2>{}</h2>\n<table><tr><th>figure</th><th>A</th><th>B</th><th>change</th><th>change %</th></tr>",
                esc(&title)
            );
        }
        let (d, rel) = change(r);
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&r.figure),
            num(r.a),
            num(r.b),
            esc(&d),
            esc(&rel)
        );
    }
    if group.is_some() {
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}
