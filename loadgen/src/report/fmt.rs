//! Number formatting shared by the charts and the pages, so a figure reads the same
//! everywhere: counts with thousands separators, milliseconds with sensible precision.

/// `12345` -> `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float count for axis labels: whole numbers get separators, small ones a decimal.
pub fn axis_count(v: f64) -> String {
    if v.abs() >= 10.0 || v.fract() == 0.0 {
        let rounded = v.round();
        if rounded < 0.0 {
            format!("-{}", count((-rounded) as u64))
        } else {
            count(rounded as u64)
        }
    } else {
        format!("{v:.1}")
    }
}

/// Milliseconds: `0.42 ms`, `12.3 ms`, `1,234 ms`, `12.5 s`.
pub fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{} ms", count(v.round() as u64))
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// Milliseconds for a log axis tick: short, no unit (the axis names it).
pub fn ms_tick(v: f64) -> String {
    if v >= 1.0 {
        count(v.round() as u64)
    } else if v >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Seconds: `0.35 s`, `12.0 s`.
pub fn secs(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} s")
    } else {
        format!("{v:.1} s")
    }
}

/// A fraction as a percentage with one decimal.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// The percentile a "nines" value stands for: 0 -> 0%, 1 -> 90%, 2 -> 99%, 3 -> 99.9%.
pub fn nines(x: f64) -> String {
    let p = (1.0 - 10f64.powf(-x)) * 100.0;
    let decimals = if x <= 2.0 { 0 } else { (x.ceil() as usize) - 2 };
    format!("{p:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_naturally() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(ms(0.4234), "0.42 ms");
        assert_eq!(ms(1234.4), "1,234 ms");
        assert_eq!(ms(12_500.0), "12.5 s");
        assert_eq!(nines(0.0), "0%");
        assert_eq!(nines(1.0), "90%");
        assert_eq!(nines(3.0), "99.9%");
        assert_eq!(nines(4.0), "99.99%");
    }
}
