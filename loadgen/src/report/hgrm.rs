//! Parsing HdrHistogram's percentile-distribution text (`.hgrm`): the
//! `Value Percentile TotalCount 1/(1-Percentile)` table, in milliseconds, with its
//! `#[...]` footer. Only the table is read; the footer's figures repeat what
//! `summary.csv` already says.

use std::path::Path;

use super::ReportError;
use super::data::HgrmPoint;

/// Parse the percentile table. Blank lines, the column header and `#` lines are
/// skipped; any other line must start with a value, a percentile in 0..=1 and a count.
pub fn parse(path: &Path, text: &str) -> Result<Vec<HgrmPoint>, ReportError> {
    let mut points = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let bad = |message: String| ReportError::Hgrm {
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

    #[test]
    fn reads_the_table_and_skips_the_footer() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20      1.000 0.000000000000          1           1.00\n\
                    \x20     12.500 0.990000000000         99         100.00\n\
                    \x20     40.000 1.000000000000        100\n\
                    #[Mean    =        2.000, StdDeviation   =        1.000]\n";
        let points = parse(Path::new("x.hgrm"), text).expect("valid table");
        assert_eq!(points.len(), 3, "three table lines, got {points:?}");
        assert_eq!(points[1].value_ms, 12.5);
        assert_eq!(points[2].total_count, 100);
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let text = "Value Percentile TotalCount\n1.0 0.5 10\n2.0 abc 11\n";
        let err = parse(Path::new("x.hgrm"), text).expect_err("bad percentile");
        let shown = err.to_string();
        assert!(
            shown.contains("x.hgrm") && shown.contains("line 3"),
            "{shown}"
        );
    }
}
