//! The invariant checks' HTTP side: reading the audit view, walking the order listing
//! page by page (`{after}` filled with the previous page's `next`), and looking orders
//! and carts up again, [`PARALLEL_LOOKUPS`] at a time. A 404 means "not there"; any
//! other status but 200, or a body without the fields the formats in README require,
//! means the checks cannot run, which is an error naming the URL. What the answers
//! mean is for `orders` and `stock` to judge.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::InvariantError;

/// How many lookups run at once: enough to check 30,000 orders in seconds, few enough
/// not to need more than a handful of connections.
const PARALLEL_LOOKUPS: usize = 16;
/// A listing longer than this many pages is taken as one that never ends.
const MAX_PAGES: usize = 100_000;

/// The audit view's fields the checks read.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Audit {
    pub initial_stock: i64,
    pub stock: i64,
    pub sold: i64,
    #[serde(default)]
    pub duplicate_idempotency_keys: i64,
    #[serde(default)]
    pub negative_stock: bool,
    /// Stock per product: when present, the stock checks run per product.
    #[serde(default)]
    pub per_product: Option<Vec<ProductAudit>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct ProductAudit {
    pub product_id: Value,
    pub initial_stock: i64,
    pub stock: i64,
    pub sold: i64,
}

/// One order of the server's listing.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Listed {
    pub order_id: String,
    pub key: String,
}

#[derive(Deserialize)]
struct Page {
    orders: Vec<PageOrder>,
    #[serde(default)]
    next: Value,
}

#[derive(Deserialize)]
struct PageOrder {
    order_id: Value,
    idempotency_key: String,
}

/// An id or cursor as text: strings as they are, numbers as written.
pub(super) fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The target, and one client for every request of the checks.
pub(super) struct Shop {
    client: reqwest::Client,
    base: String,
}

impl Shop {
    pub fn new(base: &str) -> Result<Shop, InvariantError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(PARALLEL_LOOKUPS)
            .build()
            .map_err(|source| InvariantError::Http {
                url: base.to_string(),
                source,
            })?;
        Ok(Shop {
            client,
            base: base.to_string(),
        })
    }

    pub async fn audit(&self, path: &str) -> Result<Audit, InvariantError> {
        let url = format!("{}{path}", self.base);
        let body = get(&self.client, &url)
            .await?
            .ok_or_else(|| InvariantError::Status {
                url: url.clone(),
                status: 404,
            })?;
        serde_json::from_slice(&body).map_err(|source| InvariantError::Body { url, source })
    }

    /// Every order of the listing at `template` (with `{after}`), in its order.
    pub async fn listing(&self, template: &str) -> Result<Vec<Listed>, InvariantError> {
        let mut out = Vec::new();
        let mut after = String::new();
        let mut cursors = HashSet::new();
        for _ in 0..MAX_PAGES {
            let url = format!(
                "{}{}",
                self.base,
                template.replace("{after}", &encode(&after))
            );
            let body = get(&self.client, &url)
                .await?
                .ok_or_else(|| InvariantError::Status {
                    url: url.clone(),
                    status: 404,
                })?;
            let page: Page =
                serde_json::from_slice(&body).map_err(|source| InvariantError::Body {
                    url: url.clone(),
                    source,
                })?;
            let empty = page.orders.is_empty();
            out.extend(page.orders.into_iter().map(|o| Listed {
                order_id: id_text(&o.order_id),
                key: o.idempotency_key,
            }));
            if empty || page.next.is_null() {
                return Ok(out);
            }
            after = id_text(&page.next);
            if !cursors.insert(after.clone()) {
                return Err(InvariantError::Listing {
                    url,
                    why: format!("gave the cursor {after:?} twice: it does not advance"),
                });
            }
        }
        Err(InvariantError::Listing {
            url: format!("{}{template}", self.base),
            why: format!("did not end within {MAX_PAGES} pages"),
        })
    }

    /// Each of `ids` looked up at `template` (with `{order_id}`): its JSON, or `None`
    /// when it answered 404. A body that is not JSON reads as `null`.
    pub async fn orders(
        &self,
        template: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Option<Value>>, InvariantError> {
        let urls = ids
            .iter()
            .map(|id| format!("{}{}", self.base, template.replace("{order_id}", id)))
            .collect();
        let bodies = self.get_all(urls).await?;
        Ok(ids
            .iter()
            .zip(bodies)
            .map(|(id, body)| {
                let json = body.map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null));
                (id.to_string(), json)
            })
            .collect())
    }

    /// How many of `carts` answer 404 at `template` (with `{cart_id}`).
    pub async fn missing_carts(
        &self,
        template: &str,
        carts: &[String],
    ) -> Result<u64, InvariantError> {
        let urls = carts
            .iter()
            .map(|id| format!("{}{}", self.base, template.replace("{cart_id}", id)))
            .collect();
        let bodies = self.get_all(urls).await?;
        Ok(bodies.iter().filter(|b| b.is_none()).count() as u64)
    }

    /// Every URL's body (`None`: 404), in the order given, [`PARALLEL_LOOKUPS`] at a time.
    async fn get_all(&self, urls: Vec<String>) -> Result<Vec<Option<Bytes>>, InvariantError> {
        let mut out = vec![None; urls.len()];
        let mut tasks = tokio::task::JoinSet::new();
        let mut urls = urls.into_iter().enumerate();
        loop {
            while tasks.len() < PARALLEL_LOOKUPS {
                let Some((i, url)) = urls.next() else { break };
                let client = self.client.clone();
                tasks.spawn(async move { get(&client, &url).await.map(|body| (i, body)) });
            }
            let Some(done) = tasks.join_next().await else {
                return Ok(out);
            };
            match done {
                Ok(Ok((i, body))) => out[i] = body,
                Ok(Err(e)) => return Err(e),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                // Nothing aborts these tasks, so a non-panic join error cannot happen.
                Err(_) => {}
            }
        }
    }
}

/// GET that treats 404 as "not there" (`None`) and any other non-200 as an error.
async fn get(client: &reqwest::Client, url: &str) -> Result<Option<Bytes>, InvariantError> {
    let http = |source| InvariantError::Http {
        url: url.to_string(),
        source,
    };
    let response = client.get(url).send().await.map_err(http)?;
    match response.status().as_u16() {
        200 => Ok(Some(response.bytes().await.map_err(http)?)),
        404 => Ok(None),
        status => Err(InvariantError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

/// A cursor made safe for a query string (unreserved characters kept, the rest %XX).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
