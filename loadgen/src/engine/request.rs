//! A step's request as bytes on the wire: everything that does not change between
//! requests (method, `HTTP/1.1`, `Host`, `Content-Type`) is rendered once per step
//! into a `Shape`; per request only the variable parts (the path, the idempotency
//! key, the body and its length) are written, into a buffer the user reuses. The
//! same parts also build a hyper request for the reference client path
//! (`engine::hyper_client`).

use crate::plan::journey::CompiledStep;
use hyper::Method;
use std::io::Write as _;

/// One step's fixed request parts.
#[derive(Debug, Clone)]
pub struct Shape {
    pub method: Method,
    /// The target URL's path, before every request's path (`/api/v1`, or empty).
    pub base_path: Box<str>,
    /// `GET /api/v1` (the method, a space and the base path).
    start: Box<[u8]>,
    /// ` HTTP/1.1\r\nhost: ...\r\n` and the step's fixed headers, each ending `\r\n`.
    fixed: Box<[u8]>,
    /// The `Content-Type` the step's body goes with, if it has one.
    pub content_type: Option<Box<str>>,
    /// Whether a `Content-Length` goes with every request (a body, or a method that
    /// defines one), as hyper's client sent it.
    length: bool,
    /// A HEAD answer has no body whatever its head says.
    pub head_only: bool,
}

/// Why a request could not be made: loadgen's fault, never the server's.
#[derive(Debug, PartialEq)]
pub struct BadRequest(pub String);

impl Shape {
    pub fn new(step: &CompiledStep, host: &str, base_path: &str) -> Shape {
        let content_type: Option<Box<str>> = step.content_type.as_deref().map(Into::into);
        let mut fixed = Vec::new();
        let _ = write!(fixed, " HTTP/1.1\r\nhost: {host}\r\n");
        if let Some(ct) = &content_type {
            let _ = write!(fixed, "content-type: {ct}\r\n");
        }
        let method = step.method.clone();
        let length =
            content_type.is_some() || matches!(method, Method::POST | Method::PUT | Method::PATCH);
        Shape {
            start: format!("{method} {base_path}").into_bytes().into(),
            base_path: base_path.into(),
            head_only: method == Method::HEAD,
            method,
            fixed: fixed.into(),
            content_type,
            length,
        }
    }

    /// Writes the whole request into `out` (cleared first); `headers` are the
    /// step's rendered header lines, each ending `\r\n`.
    pub fn render(
        &self,
        path: &str,
        key: Option<&str>,
        headers: &str,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), BadRequest> {
        check_target(path)?;
        out.clear();
        out.extend_from_slice(&self.start);
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&self.fixed);
        if let Some(k) = key {
            out.extend_from_slice(b"idempotency-key: ");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(headers.as_bytes());
        if self.length || !body.is_empty() {
            let _ = write!(out, "content-length: {}\r\n", body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Ok(())
    }
}

/// The path of a target URL (`http://host:port/api/v1/` -> `/api/v1`), put before
/// every request's path; empty when the URL has none. A query or fragment is not
/// part of it.
pub fn base_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').to_string()
}

/// A request target loadgen can send: an absolute path of visible ASCII (a captured
/// value with a space or a control character in it cannot be).
fn check_target(path: &str) -> Result<(), BadRequest> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(BadRequest(format!(
            "`{path}` is not a path starting with /"
        )));
    }
    if let Some(c) = b.iter().find(|c| !(0x21..0x7f).contains(*c)) {
        return Err(BadRequest(format!(
            "`{}` has a character not allowed in a URL (byte {c:#04x})",
            path.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::journey::Template;

    fn step(method: Method, body: Option<&str>) -> CompiledStep {
        CompiledStep {
            name: "s".into(),
            method,
            path: Template::parse("/x").expect("template"),
            body: body.map(|b| Template::parse(b).expect("template")),
            form: vec![],
            content_type: body.map(|_| "application/json".to_string()),
            headers: vec![],
            expect: vec![],
            captures: vec![],
            think: Default::default(),
            repeat: 1,
            idempotency_key: false,
            retryable: true,
            records: None,
        }
    }

    #[test]
    fn a_request_is_the_fixed_head_with_its_variable_parts_written_in() {
        let mut out = Vec::new();
        let get = Shape::new(&step(Method::GET, None), "127.0.0.1:80", "");
        get.render("/products/7", None, "", b"", &mut out)
            .expect("render");
        assert_eq!(
            out,
            b"GET /products/7 HTTP/1.1\r\nhost: 127.0.0.1:80\r\n\r\n".to_vec()
        );
        let post = Shape::new(&step(Method::POST, Some("{}")), "h", "");
        post.render(
            "/carts",
            Some("9-1-0-0"),
            "x-a: 1\r\n",
            b"{\"a\":1}",
            &mut out,
        )
        .expect("render");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /carts HTTP/1.1\r\nhost: h\r\ncontent-type: application/json\r\nidempotency-key: 9-1-0-0\r\nx-a: 1\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
        );
        let empty_post = Shape::new(&step(Method::POST, None), "h", "");
        empty_post
            .render("/c", None, "", b"", &mut out)
            .expect("render");
        assert!(out.ends_with(b"content-length: 0\r\n\r\n"));
        let prefixed = Shape::new(&step(Method::GET, None), "h", "/api/v1");
        prefixed
            .render("/products/7", None, "", b"", &mut out)
            .expect("render");
        assert!(out.starts_with(b"GET /api/v1/products/7 HTTP/1.1\r\n"));
    }

    #[test]
    fn the_base_path_is_the_url_s_path_without_a_trailing_slash_or_query() {
        for (url, base) in [
            ("http://127.0.0.1:8080", ""),
            ("http://127.0.0.1:8080/", ""),
            ("http://h:1/api/v1", "/api/v1"),
            ("https://h/api/v1/", "/api/v1"),
            ("http://h/shop?x=1", "/shop"),
        ] {
            assert_eq!(base_path(url), base, "{url}");
        }
    }

    #[test]
    fn a_path_with_a_space_or_no_leading_slash_is_refused() {
        let get = Shape::new(&step(Method::GET, None), "h", "");
        let mut out = Vec::new();
        assert!(get.render("/a b", None, "", b"", &mut out).is_err());
        assert!(get.render("/a\n", None, "", b"", &mut out).is_err());
        assert!(get.render("a", None, "", b"", &mut out).is_err());
        assert!(get.render("/a?b=%20&c=d", None, "", b"", &mut out).is_ok());
    }
}
