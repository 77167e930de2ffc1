//! The scenario's `[request]` table: what every request of every step carries
//! (headers with templates) and whether each user keeps a cookie jar. Per-step
//! headers, `content_type` and `form` are keys of `[[journey]]`; compiling and
//! checking them all is `plan::journey`'s.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSettings {
    /// Header name -> value template, sent with every step's request (a step's own
    /// `headers` of the same name win). A header using a captured variable is sent
    /// from the step after the one that captures it.
    #[serde(default)]
    pub headers: toml::Table,
    /// Each user keeps the cookies its answers set and sends them back, as a browser
    /// would (per user, matched by path).
    #[serde(default = "yes")]
    pub cookies: bool,
    /// HTTPS: a PEM file of CA certificates trusted beside the Mozilla roots (a
    /// private CA); relative to the scenario file, `~/` is the home folder.
    pub ca_file: Option<String>,
}

impl Default for RequestSettings {
    fn default() -> Self {
        RequestSettings {
            headers: toml::Table::new(),
            cookies: true,
            ca_file: None,
        }
    }
}

fn yes() -> bool {
    true
}
