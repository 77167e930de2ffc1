//! A step's request parts beyond method and path, compiled and checked once: its
//! headers (the scenario's `[request].headers` merged with the step's own, values as
//! templates), its body's `Content-Type`, and a form body (`form = { field = "..." }`,
//! sent URL-encoded). Names loadgen writes itself (`Host`, `Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Cookie` while the jar is on, `Content-Type`:
//! use `content_type`) are refused, with the key that names them.

use super::Problem;
use crate::plan::journey::Template;
use crate::plan::scenario::{RequestSettings, Step};
use std::fmt::Write as _;

/// One header of a step: its name as written and its value template.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderTemplate {
    pub name: String,
    pub value: Template,
}

/// RFC 9110 token characters: what a header name may be made of.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_name(name: &str, cookies: bool) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(token_char) {
        return Err(format!("`{name}` is not a header name"));
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "host" | "content-length" | "transfer-encoding" | "connection" => {
            Err(format!("loadgen writes `{name}` itself"))
        }
        "content-type" => Err("give the body's type as the step's `content_type`".into()),
        "idempotency-key" => Err("use the step's `idempotency_key = true`".into()),
        "cookie" if cookies => Err(
            "the cookie jar sends cookies (set `[request] cookies = false` to write them yourself)"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Parses one `name = "template"` entry; `template` parses and binds the value.
fn entry(
    name: &str,
    value: &toml::Value,
    cookies: bool,
    template: &dyn Fn(&str) -> Result<Template, String>,
) -> Result<HeaderTemplate, String> {
    check_name(name, cookies)?;
    let Some(text) = value.as_str() else {
        return Err(format!("`{name}` must be a string"));
    };
    if text.contains(['\r', '\n']) {
        return Err(format!("`{name}`: a header value cannot hold a line break"));
    }
    Ok(HeaderTemplate {
        name: name.to_string(),
        value: template(text)?,
    })
}

/// The headers of step `i`: the scenario's whose variables are captured by an
/// earlier step (the others are not sent yet), then the step's own, which replace a
/// scenario header of the same name.
pub fn headers(
    i: usize,
    st: &Step,
    settings: &RequestSettings,
    known: &[String],
    template: &dyn Fn(&str) -> Result<Template, String>,
) -> Result<Vec<HeaderTemplate>, Problem> {
    let mut out: Vec<HeaderTemplate> = Vec::new();
    for (name, value) in &st.headers {
        let h = entry(name, value, settings.cookies, template)
            .map_err(|m| (format!("journey[{i}].headers.{name}"), m))?;
        out.push(h);
    }
    for (name, value) in &settings.headers {
        if out.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
            continue;
        }
        let Some(text) = value.as_str() else {
            return Err((
                format!("request.headers.{name}"),
                format!("`{name}` must be a string"),
            ));
        };
        let parsed = Template::parse(text).map_err(|m| (format!("request.headers.{name}"), m))?;
        if parsed.variables().all(|v| known.iter().any(|k| k == v)) {
            let h = entry(name, value, settings.cookies, template)
                .map_err(|m| (format!("request.headers.{name}"), m))?;
            out.push(h);
        }
    }
    Ok(out)
}

/// Checks the scenario's headers once: each name, and each variable captured by
/// some step (`known`: every variable of the journey).
pub fn check_scenario_headers(settings: &RequestSettings, known: &[String]) -> Result<(), Problem> {
    for (name, value) in &settings.headers {
        let key = format!("request.headers.{name}");
        let any = |text: &str| Template::parse(text);
        let h = entry(name, value, settings.cookies, &|t| any(t)).map_err(|m| (key.clone(), m))?;
        if let Some(v) = h.value.variables().find(|v| !known.iter().any(|k| k == v)) {
            return Err((
                key,
                format!("variable `${{{v}}}` is not captured by any step"),
            ));
        }
    }
    Ok(())
}

/// A form body: field -> value template, in the order written.
pub fn form(
    i: usize,
    st: &Step,
    template: &dyn Fn(&str) -> Result<Template, String>,
) -> Result<Vec<(String, Template)>, Problem> {
    let Some(table) = &st.form else {
        return Ok(Vec::new());
    };
    if st.body.is_some() {
        return Err((
            format!("journey[{i}].form"),
            "give either `body` or `form`, not both".into(),
        ));
    }
    let mut out = Vec::new();
    for (field, value) in table {
        let key = format!("journey[{i}].form.{field}");
        let Some(text) = value.as_str() else {
            return Err((key, format!("`{field}` must be a string")));
        };
        out.push((field.clone(), template(text).map_err(|m| (key, m))?));
    }
    Ok(out)
}

/// The `Content-Type` a step's body goes with: its `content_type`, else JSON for a
/// `body` and URL-encoded for a `form`; `None` without a body.
pub fn content_type(i: usize, st: &Step) -> Result<Option<String>, Problem> {
    let has_body = st.body.is_some() || st.form.is_some();
    match (&st.content_type, has_body) {
        (Some(ct), true) => {
            if ct.is_empty() || ct.chars().any(|c| c.is_control()) {
                return Err((
                    format!("journey[{i}].content_type"),
                    format!("`{}` is not a media type", ct.escape_debug()),
                ));
            }
            Ok(Some(ct.clone()))
        }
        (Some(_), false) => Err((
            format!("journey[{i}].content_type"),
            "a `content_type` needs a `body` or a `form`".into(),
        )),
        (None, true) if st.form.is_some() => Ok(Some("application/x-www-form-urlencoded".into())),
        (None, true) => Ok(Some("application/json".into())),
        (None, false) => Ok(None),
    }
}

/// Appends `text` URL-encoded for a form (`application/x-www-form-urlencoded`).
pub fn form_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_url_encoded() {
        let mut out = String::new();
        form_encode("a b&c=d/é", &mut out);
        assert_eq!(out, "a+b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn header_names_loadgen_writes_itself_are_refused() {
        let t = |s: &str| Template::parse(s);
        for name in [
            "Host",
            "content-length",
            "Connection",
            "Content-Type",
            "Cookie",
            "a b",
            "",
        ] {
            assert!(
                entry(name, &toml::Value::from("x"), true, &t).is_err(),
                "{name}"
            );
        }
        assert!(entry("Cookie", &toml::Value::from("a=1"), false, &t).is_ok());
        assert!(entry("X-Trace", &toml::Value::from("a\r\nb"), true, &t).is_err());
        assert!(entry("Authorization", &toml::Value::from("Bearer ${t}"), true, &t).is_ok());
    }
}
