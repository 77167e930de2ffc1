//! The journey a user walks, compiled once from the scenario: request templates
//! (`${cart_id}`, `${rand:1..20}`, `${user}`), expected statuses, captures from JSON
//! responses, think times, checked as they are compiled. The user loop reads this
//! data; it never re-reads the scenario. Rendering writes into a buffer the caller reuses.

use super::Problem;
use crate::plan::request_parts::{self, HeaderTemplate};
use crate::plan::scenario::{RequestSettings, Step, ThinkRange};
use hyper::Method;
use rand::RngExt;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Lit(String),
    /// A value captured by an earlier step (index into the user's variables).
    Var(String, usize),
    Rand(u64, u64),
    User,
    Nonce,
    Rep,
}

/// A string with `${...}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// What a template needs from the user that renders it.
pub struct Ctx<'a> {
    pub user: u64,
    pub nonce: u64,
    pub rep: u32,
    pub vars: &'a [String],
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Lit(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
            let name = after[..end].trim();
            segments.push(match name {
                "user" => Segment::User,
                "nonce" => Segment::Nonce,
                "rep" => Segment::Rep,
                _ if name.starts_with("rand:") => {
                    let range = &name[5..];
                    let (a, b) = range
                        .split_once("..")
                        .ok_or_else(|| format!("`${{{name}}}`: write a range like rand:1..20"))?;
                    let lo = a
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("`${{{name}}}`: bad number"))?;
                    let hi = b
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("`${{{name}}}`: bad number"))?;
                    if hi < lo {
                        return Err(format!("`${{{name}}}`: range is empty"));
                    }
                    Segment::Rand(lo, hi)
                }
                _ if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Segment::Var(name.to_string(), usize::MAX)
                }
                _ => return Err(format!("`${{{name}}}` is not a variable name")),
            });
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Lit(rest.to_string()));
        }
        Ok(Template { segments })
    }

    /// Names of captured variables the template uses.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(n, _) => Some(n.as_str()),
            _ => None,
        })
    }

    fn bind(&mut self, names: &[String]) {
        for s in &mut self.segments {
            if let Segment::Var(n, idx) = s {
                *idx = names.iter().position(|k| k == n).unwrap_or(usize::MAX);
            }
        }
    }

    /// Appends the rendered text to `out`.
    pub fn render(&self, ctx: &Ctx<'_>, rng: &mut impl RngExt, out: &mut String) {
        for s in &self.segments {
            match s {
                Segment::Lit(t) => out.push_str(t),
                Segment::Var(_, idx) => out.push_str(ctx.vars.get(*idx).map_or("", |v| v.as_str())),
                Segment::Rand(lo, hi) => {
                    let _ = write!(out, "{}", rng.random_range(*lo..=*hi));
                }
                Segment::User => {
                    let _ = write!(out, "{}", ctx.user);
                }
                Segment::Nonce => {
                    let _ = write!(out, "{}", ctx.nonce);
                }
                Segment::Rep => {
                    let _ = write!(out, "{}", ctx.rep);
                }
            }
        }
    }
}

/// One step, ready for the user loop.
#[derive(Debug, Clone)]
pub struct CompiledStep {
    pub name: String,
    pub method: Method,
    pub path: Template,
    pub body: Option<Template>,
    /// A form body instead of `body`: field -> value, URL-encoded when rendered.
    pub form: Vec<(String, Template)>,
    /// The body's `Content-Type`; `None` without a body.
    pub content_type: Option<String>,
    /// Headers beyond those loadgen writes itself, values as templates.
    pub headers: Vec<HeaderTemplate>,
    pub expect: Vec<u16>,
    /// (variable index, JSON field path).
    pub captures: Vec<(usize, Vec<String>)>,
    pub think: ThinkRange,
    pub repeat: u32,
    pub idempotency_key: bool,
    /// May be retried when no response arrived: GET/HEAD, or carries a key.
    pub retryable: bool,
    /// What a 2xx answer to this step creates, for the invariant checks.
    pub records: Option<Record>,
}

/// What a step's first captured value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Order,
    Cart,
}

impl CompiledStep {
    /// `ok` class: 2xx, or a status the step lists as expected.
    pub fn is_ok_status(&self, status: u16) -> bool {
        (200..300).contains(&status) || self.expect.contains(&status)
    }

    /// Whether the user walks on after this status.
    pub fn continues_after(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Journey {
    pub steps: Vec<CompiledStep>,
    pub var_names: Vec<String>,
    /// Each user keeps a cookie jar (`[request] cookies`).
    pub cookies: bool,
    /// `[request] ca_file`, resolved against the scenario's folder when loaded.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Journey {
    /// Checks and compiles the scenario's steps: what serde cannot say (a duplicate
    /// name, a variable used before a step captures it, a recording step without its
    /// key) comes back as a problem at `journey[i].key`. Templates are parsed here and
    /// nowhere else.
    pub fn compile(journey: &[Step], request: &RequestSettings) -> Result<Journey, Problem> {
        if journey.is_empty() {
            return Err((
                "journey".into(),
                "the journey is empty: add at least one [[journey]] step".into(),
            ));
        }
        let mut var_names: Vec<String> = Vec::new();
        let mut steps = Vec::with_capacity(journey.len());
        for (i, st) in journey.iter().enumerate() {
            let key = |k: &str| format!("journey[{i}].{k}");
            let bad = |k: &str, message: String| Err((key(k), message));
            if st.name.is_empty() || !st.name.chars().all(safe_char) || st.name == "all" {
                return bad(
                    "name",
                    format!(
                        "`{}` must be letters, digits, `-`, `_` or `.` (and not `all`)",
                        st.name
                    ),
                );
            }
            if journey[..i].iter().any(|o| o.name == st.name) {
                return bad("name", format!("step `{}` is listed twice", st.name));
            }
            if !METHODS.contains(&st.method.as_str()) {
                return bad(
                    "method",
                    format!("`{}` is not one of {METHODS:?}", st.method),
                );
            }
            let method = Method::from_bytes(st.method.as_bytes())
                .map_err(|e| (key("method"), e.to_string()))?;
            if !st.path.starts_with('/') {
                return bad("path", format!("`{}` must start with /", st.path));
            }
            let template = |k: &str, text: &str| -> Result<Template, Problem> {
                let mut t = Template::parse(text).map_err(|m| (key(k), m))?;
                if let Some(v) = t.variables().find(|v| !var_names.iter().any(|k| k == v)) {
                    return Err((
                        key(k),
                        format!("variable `${{{v}}}` is not captured by an earlier step"),
                    ));
                }
                t.bind(&var_names);
                Ok(t)
            };
            let path = template("path", &st.path)?;
            let body = st
                .body
                .as_deref()
                .map(|b| template("body", b))
                .transpose()?;
            let bound = |text: &str| -> Result<Template, String> {
                let mut t = Template::parse(text)?;
                if let Some(v) = t.variables().find(|v| !var_names.iter().any(|k| k == v)) {
                    return Err(format!(
                        "variable `${{{v}}}` is not captured by an earlier step"
                    ));
                }
                t.bind(&var_names);
                Ok(t)
            };
            let form = request_parts::form(i, st, &bound)?;
            let content_type = request_parts::content_type(i, st)?;
            let headers = request_parts::headers(i, st, request, &var_names, &bound)?;
            if let Some(code) = st.expect.iter().find(|c| !(100..=599).contains(*c)) {
                return bad("expect", format!("{code} is not an HTTP status"));
            }
            if st.repeat == 0 {
                return bad("repeat", "must be at least 1".into());
            }
            let mut captures = Vec::with_capacity(st.capture.len());
            for (var, field) in &st.capture {
                let Some(field) = field.as_str() else {
                    return bad(
                        "capture",
                        format!("`{var}` must name a JSON field as a string"),
                    );
                };
                let idx = match var_names.iter().position(|k| k == var) {
                    Some(idx) => idx,
                    None => {
                        var_names.push(var.clone());
                        var_names.len() - 1
                    }
                };
                captures.push((idx, field.split('.').map(str::to_string).collect()));
            }
            let records = match st.records.as_deref() {
                None => None,
                Some("order" | "cart") if st.capture.is_empty() => {
                    return bad(
                        "records",
                        "a recording step must capture the id it records".into(),
                    );
                }
                Some("order") if !st.idempotency_key => {
                    return bad(
                        "records",
                        "an order step needs `idempotency_key = true`".into(),
                    );
                }
                Some("order") => Some(Record::Order),
                Some("cart") => Some(Record::Cart),
                Some(other) => {
                    return bad("records", format!("`{other}` is not `order` or `cart`"));
                }
            };
            let retryable = st.idempotency_key || method == Method::GET || method == Method::HEAD;
            steps.push(CompiledStep {
                name: st.name.clone(),
                method,
                path,
                body,
                form,
                content_type,
                headers,
                expect: st.expect.clone(),
                captures,
                think: st.think,
                repeat: st.repeat,
                idempotency_key: st.idempotency_key,
                retryable,
                records,
            });
        }
        request_parts::check_scenario_headers(request, &var_names)?;
        Ok(Journey {
            steps,
            var_names,
            cookies: request.cookies,
            ca_file: request.ca_file.as_deref().map(std::path::PathBuf::from),
        })
    }

    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// Names of steps (and modes) appear in CSV columns and file names.
pub(crate) fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// Reads a captured value from a JSON body: strings as is, numbers as written.
pub fn capture(body: &[u8], path: &[String]) -> Option<String> {
    let root: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut v = &root;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn renders_placeholders() {
        let mut t =
            Template::parse("/carts/${cart_id}/items?u=${user}&p=${rand:3..3}").expect("parse");
        t.bind(&["cart_id".to_string()]);
        let vars = vec!["17".to_string()];
        let ctx = Ctx {
            user: 5,
            nonce: 9,
            rep: 0,
            vars: &vars,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut out = String::new();
        t.render(&ctx, &mut rng, &mut out);
        assert_eq!(out, "/carts/17/items?u=5&p=3");
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert!(Template::parse("/a/${").is_err());
        assert!(Template::parse("/a/${rand:5..1}").is_err());
        assert!(Template::parse("/a/${no spaces}").is_err());
    }

    #[test]
    fn captures_fields() {
        let body = br#"{"cart_id": 42, "x": {"y": "z"}}"#;
        assert_eq!(capture(body, &["cart_id".into()]), Some("42".into()));
        assert_eq!(capture(body, &["x".into(), "y".into()]), Some("z".into()));
        assert_eq!(capture(body, &["nope".into()]), None);
    }
}
