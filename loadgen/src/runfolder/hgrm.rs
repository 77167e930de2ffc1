//! `latency-<mode>.hgrm`: HdrHistogram's percentile-distribution text, values in
//! milliseconds, the layout HdrHistogram's tools print and its plotters read. The one
//! writer ([`write_hgrm`], [`hgrm_text`]) and the one reader ([`read_hgrm`]); the
//! reader takes only the `Value Percentile TotalCount` table, since the `#[...]`
//! footer's figures repeat what summary.csv already says.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use hdrhistogram::Histogram;

use super::table::{ReadError, read_text};

/// One line of the percentile table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmPoint {
    pub value_ms: f64,
    pub percentile: f64,
    pub total_count: u64,
}

/// The file name of `mode`'s distribution.
pub fn hgrm_file(mode: &str) -> String {
    format!("latency-{mode}.hgrm")
}

/// Writes `mode`'s distribution into `dir`; `h` holds microseconds.
pub fn write_hgrm(dir: &Path, mode: &str, h: &Histogram<u64>) -> io::Result<()> {
    std::fs::write(dir.join(hgrm_file(mode)), hgrm_text(h))
}

/// The percentile-distribution text of `h` (microseconds), values in milliseconds.
pub fn hgrm_text(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / 1000.0;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / 1000.0,
            h.stdev() / 1000.0,
            h.max() as f64 / 1000.0,
        )
    };
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {sd:12.3}]");
    let _ = writeln!(
        s,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        2048
    );
    s
}

/// Reads `mode`'s percentile table from `dir`; `None` when the file is absent.
pub fn read_hgrm(dir: &Path, mode: &str) -> Result<Option<Vec<HgrmPoint>>, ReadError> {
    let path = dir.join(hgrm_file(mode));
    if !path.exists() {
        return Ok(None);
    }
    parse_hgrm(&path, &read_text(&path)?).map(Some)
}

/// Parses the percentile table of `text` (read from `path`, which errors name). Blank
/// lines, the column header and `#` lines are skipped; any other line must start with
/// a value, a percentile in 0..=1 and a count.
pub fn parse_hgrm(path: &Path, text: &str) -> Result<Vec<HgrmPoint>, ReadError> {
    let mut points = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let bad = |message: String| ReadError::Hgrm {
            file: path.to_path_buf(),
            line: index as u64 + 1,
            message,
        };
        let mut fields = line.split_whitespace();
        let mut next = |name: &str| {
            fields
                .next()
                .ok_or_else(|| bad(format!("missing {name}")))
                .map(str::to_string)
        };
        let value = next("Value")?;
        let percentile = next("Percentile")?;
        let count = next("TotalCount")?;
        let value_ms: f64 = value
            .parse()
            .map_err(|_| bad(format!("Value `{value}` is not a number")))?;
        let percentile: f64 = percentile
            .parse()
            .ok()
            .filter(|p: &f64| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad(format!("Percentile `{percentile}` is not in 0..1")))?;
        let total_count: u64 = count
            .parse()
            .map_err(|_| bad(format!("TotalCount `{count}` is not a count")))?;
        points.push(HgrmPoint {
            value_ms,
            percentile,
            total_count,
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::Hist;

    #[test]
    fn layout() {
        let mut h = Hist::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let text = hgrm_text(&h.0);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(
            text.contains("#[Max     =     1000.447, Total count    =         1000]"),
            "{text}"
        );
        let points = parse_hgrm(Path::new("x.hgrm"), &text).expect("own text parses");
        let last = points.last().expect("a table");
        assert_eq!((last.percentile, last.total_count), (1.0, 1000), "{text}");
    }

    #[test]
    fn reads_the_table_and_skips_the_footer() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20      1.000 0.000000000000          1           1.00\n\
                    \x20     12.500 0.990000000000         99         100.00\n\
                    \x20     40.000 1.000000000000        100\n\
                    #[Mean    =        2.000, StdDeviation   =        1.000]\n";
        let points = parse_hgrm(Path::new("x.hgrm"), text).expect("valid table");
        assert_eq!(points.len(), 3, "three table lines, got {points:?}");
        assert_eq!(points[1].value_ms, 12.5);
        assert_eq!(points[2].total_count, 100);
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let text = "Value Percentile TotalCount\n1.0 0.5 10\n2.0 abc 11\n";
        let err = parse_hgrm(Path::new("x.hgrm"), text).expect_err("bad percentile");
        let shown = err.to_string();
        assert!(
            shown.contains("x.hgrm") && shown.contains("line 3"),
            "{shown}"
        );
    }
}
