//! One user's cookie jar, kept as a browser keeps it for one site: each
//! `Set-Cookie` of an answer stores (or replaces, or with `Max-Age=0` or an `Expires`
//! in the past removes) a cookie by name and path; every request sends the cookies
//! whose path matches its path, in one `Cookie` header, longest path first. The
//! target is one host, so `Domain` is not needed to choose; `Secure` and `HttpOnly`
//! change nothing for a client that is not a browser page on loopback. Cookies live
//! for the user's journey (a session). A user whose answers set no cookie holds an
//! empty `Vec`, no allocation.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
struct Cookie {
    name: String,
    value: String,
    path: String,
}

#[derive(Debug, Default)]
pub struct Jar {
    cookies: Vec<Cookie>,
}

/// RFC 6265 5.1.4: the default path of a cookie set in answer to `request_path`.
fn default_path(request_path: &str) -> &str {
    let path = request_path.split('?').next().unwrap_or_default();
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// RFC 6265 5.1.4: whether a cookie with `cookie_path` goes with `request_path`.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    let path = request_path.split('?').next().unwrap_or_default();
    path == cookie_path
        || (path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
}

/// Whether an `Expires` date is in the past. Only the year is looked at: a cookie
/// deleted by a server sets a date long gone (1970), and one kept for a session sets
/// a date to come; anything unreadable counts as to come.
fn expired(date: &str) -> bool {
    let year = date
        .split([' ', '-'])
        .filter_map(|w| w.parse::<i64>().ok())
        .find(|n| *n >= 1601);
    let now = stampede_common::time::civil(std::time::SystemTime::now()).0;
    year.is_some_and(|y| y < now)
}

impl Jar {
    /// Takes one `Set-Cookie` value from an answer to a request for `request_path`.
    pub fn store(&mut self, set_cookie: &[u8], request_path: &str) {
        let Ok(text) = std::str::from_utf8(set_cookie) else {
            return;
        };
        let mut parts = text.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut path = default_path(request_path).to_string();
        let mut remove = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("path") && v.starts_with('/') {
                path = v.to_string();
            } else if k.eq_ignore_ascii_case("max-age") {
                remove = v.parse::<i64>().is_ok_and(|s| s <= 0);
            } else if k.eq_ignore_ascii_case("expires") && expired(v) {
                remove = true;
            }
        }
        self.cookies.retain(|c| !(c.name == name && c.path == path));
        if !remove {
            self.cookies.push(Cookie {
                name: name.to_string(),
                value: value.to_string(),
                path,
            });
        }
    }

    /// Appends the `cookie: ...\r\n` header line for a request to `request_path`, if
    /// any cookie goes with it.
    pub fn header(&self, request_path: &str, out: &mut String) {
        let mut sending: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| path_matches(&c.path, request_path))
            .collect();
        if sending.is_empty() {
            return;
        }
        // Longer paths first; among equals, the order they were set in (stable sort).
        sending.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        out.push_str("cookie: ");
        for (i, c) in sending.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            let _ = write!(out, "{}={}", c.name, c.value);
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(jar: &Jar, path: &str) -> String {
        let mut s = String::new();
        jar.header(path, &mut s);
        s
    }

    #[test]
    fn cookies_are_sent_back_by_path_replaced_by_name_and_removed_when_expired() {
        let mut jar = Jar::default();
        assert_eq!(header(&jar, "/"), "");
        jar.store(b"sid=abc; Path=/; HttpOnly", "/login");
        jar.store(b"cart=7; Path=/carts", "/carts");
        jar.store(b"pref=dark", "/account/settings");
        assert_eq!(header(&jar, "/products"), "cookie: sid=abc\r\n");
        assert_eq!(header(&jar, "/carts/7?x=1"), "cookie: cart=7; sid=abc\r\n");
        assert_eq!(header(&jar, "/cartsX"), "cookie: sid=abc\r\n");
        assert_eq!(header(&jar, "/account/x"), "cookie: pref=dark; sid=abc\r\n");
        jar.store(b"sid=def; Path=/", "/");
        assert_eq!(header(&jar, "/"), "cookie: sid=def\r\n");
        jar.store(b"sid=; Path=/; Max-Age=0", "/");
        assert_eq!(header(&jar, "/"), "");
        jar.store(
            b"cart=; Path=/carts; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "/",
        );
        assert_eq!(header(&jar, "/carts/7"), "");
        jar.store(
            b"keep=1; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
            "/",
        );
        assert_eq!(header(&jar, "/x"), "cookie: keep=1\r\n");
        jar.store(b"no-equals-sign", "/");
        assert_eq!(header(&jar, "/x"), "cookie: keep=1\r\n");
    }
}
