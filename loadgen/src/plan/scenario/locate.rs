//! Locating a key in the scenario's source text, so every error names its line: the
//! line of a byte offset (for TOML syntax errors) and the line where a key path such
//! as `load.arrival.peak_rate` or `journey[2].path` is written (for semantic errors
//! found after parsing). Knows the TOML layout, not what the keys mean.

/// One line of the source as the scanner sees it: its 1-based number and full key.
fn scan(source: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut last = String::new();
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let idx = match arrays.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c - 1
                }
                None => {
                    arrays.push((name.clone(), 1));
                    0
                }
            };
            table = format!("{name}[{idx}]");
            last = table.clone();
        } else if let Some(name) = line.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
            last = table.clone();
        } else if !line.starts_with('#') && line.contains('=') {
            let key = line
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            last = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
        }
        out.push((i + 1, last.clone()));
    }
    out
}

/// The line and key at a byte offset of the source (for serde/toml errors).
pub fn key_at(source: &str, offset: usize) -> (usize, String) {
    let line = source[..offset.min(source.len())].matches('\n').count() + 1;
    let key = scan(source)
        .into_iter()
        .find(|(n, _)| *n == line)
        .map(|(_, k)| k)
        .unwrap_or_default();
    (
        line,
        if key.is_empty() {
            "(top level)".into()
        } else {
            key
        },
    )
}

/// The line where a key path (or its nearest enclosing table) is written; 1 if absent.
pub fn line_of_key(source: &str, key: &str) -> usize {
    let lines = scan(source);
    let mut probe = key.to_string();
    loop {
        if let Some((n, _)) = lines.iter().find(|(_, k)| *k == probe) {
            return *n;
        }
        match probe.rfind(['.', '[']) {
            Some(cut) => probe.truncate(cut),
            None => return 1,
        }
    }
}
