//! Invariants: after a mode's load, does the shop still hold what it promised? The engine
//! keeps a [`Ledger`] of every order it saw confirmed (with its idempotency key) and every
//! cart it saw created; this module reads the server's audit view, looks each of them up
//! again, and reports lost orders, duplicate orders, oversold stock and vanished carts as
//! the rows of `invariants.csv`. It speaks HTTP to the target only through the paths the
//! scenario gives, so another shop with an audit view can be checked the same way.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the harness saw confirmed during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// (order id, idempotency key) of every confirmed checkout answer.
    pub orders: Vec<(String, String)>,
    /// Every cart id the server handed out.
    pub carts: Vec<String>,
}

impl Ledger {
    pub fn merge(&mut self, other: Ledger) {
        self.orders.extend(other.orders);
        self.carts.extend(other.carts);
    }
}

/// Where the checks look: paths on the target, with `{order_id}` / `{cart_id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPaths {
    pub audit: String,
    pub order: String,
    pub cart: String,
}

/// The audit view's fields this module reads.
#[derive(Debug, Clone, Deserialize)]
struct Audit {
    initial_stock: i64,
    stock: i64,
    sold: i64,
    #[serde(default)]
    duplicate_idempotency_keys: i64,
    #[serde(default)]
    negative_stock: bool,
}

/// One row of `invariants.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub check: &'static str,
    pub expected: String,
    pub actual: String,
    pub holds: bool,
}

/// The outcome of all checks for one mode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvariantReport {
    pub lost_orders: u64,
    pub duplicate_orders: u64,
    pub oversold: u64,
    pub vanished_carts: u64,
    pub checks: Vec<Check>,
}

/// Why the checks could not run (as opposed to: they ran and found a problem).
#[derive(Debug, thiserror::Error)]
pub enum InvariantError {
    #[error("reading {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered {status}, expected 200 or 404")]
    Status { url: String, status: u16 },
    #[error("{url} answered JSON without the audit fields: {source}")]
    Body { url: String, source: reqwest::Error },
}

/// How many lookups run at once: enough to check 30,000 orders in seconds, few enough
/// not to need more than a handful of connections.
const PARALLEL_LOOKUPS: usize = 16;

/// Runs every check against the server at `base` (e.g. `http://127.0.0.1:3000`).
pub async fn check(
    base: &str,
    paths: &AuditPaths,
    ledger: &Ledger,
) -> Result<InvariantReport, InvariantError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(PARALLEL_LOOKUPS)
        .build()
        .map_err(|source| InvariantError::Http {
            url: base.to_string(),
            source,
        })?;

    let audit_url = format!("{base}{}", paths.audit);
    let audit: Audit = get(&client, &audit_url)
        .await?
        .ok_or(InvariantError::Status {
            url: audit_url.clone(),
            status: 404,
        })?
        .json()
        .await
        .map_err(|source| InvariantError::Body {
            url: audit_url.clone(),
            source,
        })?;

    // Two different orders answered for one key is a duplicate the harness saw itself.
    let mut by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for (order, key) in &ledger.orders {
        let ids = by_key.entry(key.as_str()).or_default();
        if !ids.contains(&order.as_str()) {
            ids.push(order.as_str());
        }
    }
    let seen_duplicates = by_key.values().map(|ids| ids.len() as u64 - 1).sum::<u64>();
    let duplicate_orders = seen_duplicates.max(audit.duplicate_idempotency_keys.max(0) as u64);

    let mut orders: Vec<&str> = ledger.orders.iter().map(|(id, _)| id.as_str()).collect();
    orders.sort_unstable();
    orders.dedup();
    let order_urls = orders
        .iter()
        .map(|id| format!("{base}{}", paths.order.replace("{order_id}", id)));
    let lost_orders = count_missing(&client, order_urls.collect()).await?;
    let cart_urls = ledger
        .carts
        .iter()
        .map(|id| format!("{base}{}", paths.cart.replace("{cart_id}", id)));
    let vanished_carts = count_missing(&client, cart_urls.collect()).await?;

    let unbalanced = (audit.initial_stock - audit.stock - audit.sold).unsigned_abs();
    // Negative stock is overselling even when the books balance; the audit's flag covers
    // one product below zero while the total is not.
    let below_zero = (-audit.stock).max(0) as u64;
    let oversold = unbalanced + below_zero.max(u64::from(audit.negative_stock));
    let zero = |check, actual: u64, what: &str| Check {
        check,
        expected: "0".to_string(),
        actual: format!("{actual} {what}"),
        holds: actual == 0,
    };
    let checks = vec![
        zero(
            "lost_orders",
            lost_orders,
            &format!("of {} confirmed orders missing", orders.len()),
        ),
        zero(
            "duplicate_orders",
            duplicate_orders,
            "idempotency keys with more than one order",
        ),
        zero("oversold", oversold, "units sold beyond stock"),
        zero(
            "vanished_carts",
            vanished_carts,
            &format!("of {} carts missing", ledger.carts.len()),
        ),
        Check {
            check: "stock_balance",
            expected: format!("initial {} = stock + sold", audit.initial_stock),
            actual: format!(
                "{} + {} = {}",
                audit.stock,
                audit.sold,
                audit.stock + audit.sold
            ),
            holds: unbalanced == 0,
        },
    ];
    Ok(InvariantReport {
        lost_orders,
        duplicate_orders,
        oversold,
        vanished_carts,
        checks,
    })
}

/// GET that treats 404 as "not there" (`None`) and any other non-200 as an error.
async fn get(
    client: &reqwest::Client,
    url: &str,
) -> Result<Option<reqwest::Response>, InvariantError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|source| InvariantError::Http {
            url: url.to_string(),
            source,
        })?;
    match response.status().as_u16() {
        200 => Ok(Some(response)),
        404 => Ok(None),
        status => Err(InvariantError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

/// How many of `urls` answer 404, looked up `PARALLEL_LOOKUPS` at a time.
async fn count_missing(client: &reqwest::Client, urls: Vec<String>) -> Result<u64, InvariantError> {
    let mut missing = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let mut urls = urls.into_iter();
    loop {
        while tasks.len() < PARALLEL_LOOKUPS {
            let Some(url) = urls.next() else { break };
            let client = client.clone();
            tasks.spawn(async move { get(&client, &url).await.map(|r| r.is_none()) });
        }
        let Some(done) = tasks.join_next().await else {
            return Ok(missing);
        };
        match done {
            Ok(Ok(gone)) => missing += u64::from(gone),
            Ok(Err(e)) => return Err(e),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Nothing aborts these tasks, so a non-panic join error cannot happen.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A shop that lost order 2 and cart 11, oversold by one unit, and says so.
    async fn broken_shop() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, body) = match path.as_str() {
                        "/admin/audit" => (
                            "200 OK",
                            r#"{"initial_stock":100,"stock":-1,"sold":101,"duplicate_idempotency_keys":0,"negative_stock":true}"#,
                        ),
                        "/orders/1" | "/orders/3" | "/carts/10" => ("200 OK", "{}"),
                        _ => ("404 Not Found", "{}"),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        (base, server)
    }

    #[tokio::test]
    async fn finds_lost_and_duplicate_orders_vanished_carts_and_overselling() {
        let (base, server) = broken_shop().await;
        let ledger = Ledger {
            orders: vec![
                ("1".into(), "k1".into()),
                ("2".into(), "k2".into()),
                // The harness was answered two different orders for key k3.
                ("3".into(), "k3".into()),
                ("1".into(), "k3".into()),
            ],
            carts: vec!["10".into(), "11".into()],
        };
        let paths = AuditPaths {
            audit: "/admin/audit".into(),
            order: "/orders/{order_id}".into(),
            cart: "/carts/{cart_id}".into(),
        };
        let report = check(&base, &paths, &ledger).await;
        server.abort();
        let report = report.expect("checks ran");
        assert_eq!(report.lost_orders, 1, "{report:?}");
        assert_eq!(report.duplicate_orders, 1, "{report:?}");
        assert_eq!(report.vanished_carts, 1, "{report:?}");
        assert_eq!(report.oversold, 1, "{report:?}");
        let failing: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.holds)
            .map(|c| c.check)
            .collect();
        assert_eq!(
            failing,
            [
                "lost_orders",
                "duplicate_orders",
                "oversold",
                "vanished_carts"
            ]
        );
    }
}
