//! Invariants: after a mode's load, does the shop still hold what it promised? The
//! engine keeps a [`Ledger`] of what shoppers were told: every confirmed order (its
//! key, the checkout's request and the confirmation's body), every cart handed out, and
//! the keys of checkouts that were refused or whose answer was lost. This module reads
//! the server's audit view and order listing, looks every confirmed order and cart up
//! again, and reports lost, duplicate and phantom orders, oversold stock, the stock
//! balance and vanished carts as the rows of `invariants.csv`, plus the stock of every
//! product. It reaches the target only through the scenario's paths, so any server that
//! offers the documented audit view and listing is checked the same way. HTTP is
//! `fetch`'s; comparing is `orders`' and `stock`'s.

mod fetch;
mod orders;
mod stock;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::report::fmt::count;

/// A checkout the server confirmed, as the shopper saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfirmedOrder {
    /// The order id the confirmation gave.
    pub id: String,
    /// The idempotency key the checkout carried.
    pub key: String,
    /// The checkout request's body, as sent.
    pub asked: String,
    /// The confirmation's body, as received.
    pub told: String,
}

/// What the harness saw during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    pub orders: Vec<ConfirmedOrder>,
    /// Every cart id the server handed out.
    #[serde(default)]
    pub carts: Vec<String>,
    /// Keys of checkouts with no 2xx answer that some attempt got no answer for (or a
    /// 5xx, or were cut off): the server may hold an order nobody was told about.
    #[serde(default)]
    pub unanswered: Vec<String>,
    /// Keys of checkouts answered with a 4xx on their only attempt (out of stock):
    /// the shopper was told there is no order.
    #[serde(default)]
    pub refused: Vec<String>,
}

impl Ledger {
    pub fn merge(&mut self, other: Ledger) {
        self.orders.extend(other.orders);
        self.carts.extend(other.carts);
        self.unanswered.extend(other.unanswered);
        self.refused.extend(other.refused);
    }
}

/// Where the checks look: paths on the target, with `{order_id}`, `{cart_id}` and
/// `{after}` filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPaths {
    pub audit: String,
    pub order: String,
    pub cart: String,
    /// The order listing, page by page; `None`: phantom orders are not checked.
    pub orders: Option<String>,
}

impl AuditPaths {
    /// The `[invariants]` paths, each checked for the placeholder the checks fill in;
    /// a problem comes back as (`invariants.<key>`, message).
    pub fn new(
        audit: String,
        order: String,
        cart: String,
        orders: Option<String>,
    ) -> Result<AuditPaths, (String, String)> {
        let needs = [
            ("order", Some(&order), "{order_id}"),
            ("cart", Some(&cart), "{cart_id}"),
            ("orders", orders.as_ref(), "{after}"),
        ];
        for (key, path, placeholder) in needs {
            if let Some(path) = path.filter(|p| !p.contains(placeholder)) {
                return Err((
                    format!("invariants.{key}"),
                    format!("`{path}` must contain `{placeholder}`"),
                ));
            }
        }
        Ok(AuditPaths {
            audit,
            order,
            cart,
            orders,
        })
    }
}

/// One row of `invariants.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Check {
    pub check: &'static str,
    /// What the check compared, in words.
    pub compared: String,
    /// How many items it looked at (orders, carts, products).
    pub items: u64,
    pub expected: String,
    pub actual: String,
    pub holds: bool,
}

/// One product's stock after the run, for `stock.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductLine {
    pub product: String,
    pub initial_stock: i64,
    pub stock: i64,
    pub sold: i64,
    /// Units shoppers were confirmed, when the confirmations list their items.
    pub promised: Option<i64>,
}

/// The outcome of all checks for one mode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvariantReport {
    pub lost_orders: u64,
    pub duplicate_orders: u64,
    /// `None`: the scenario gives no order listing, so nothing could find them.
    pub phantom_orders: Option<u64>,
    pub oversold: u64,
    pub vanished_carts: u64,
    pub checks: Vec<Check>,
    /// Every product the audit view lists, in its order.
    pub stock: Vec<ProductLine>,
}

/// Why the checks could not run (as opposed to: they ran and found a problem).
#[derive(Debug, thiserror::Error)]
pub enum InvariantError {
    #[error("reading {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered {status}, expected 200 or 404")]
    Status { url: String, status: u16 },
    #[error("{url} answered JSON without the fields it must have: {source}")]
    Body {
        url: String,
        source: serde_json::Error,
    },
    #[error("the order listing at {url} {why}")]
    Listing { url: String, why: String },
}

/// Runs every check against the server at `base` (e.g. `http://127.0.0.1:3000`);
/// `nonce` is the run's, which every idempotency key loadgen sent starts with.
pub async fn check(
    base: &str,
    paths: &AuditPaths,
    ledger: &Ledger,
    nonce: u64,
) -> Result<InvariantReport, InvariantError> {
    let shop = fetch::Shop::new(base)?;
    let audit = shop.audit(&paths.audit).await?;
    let listing = match &paths.orders {
        Some(template) => Some(shop.listing(template).await?),
        None => None,
    };
    let mut ids: Vec<&str> = ledger.orders.iter().map(|o| o.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let lookups = shop.orders(&paths.order, &ids).await?;
    let vanished_carts = shop.missing_carts(&paths.cart, &ledger.carts).await?;

    let confirmed = orders::confirmed(ledger, &lookups, listing.as_deref());
    let server = orders::held(
        ledger,
        listing.as_deref(),
        audit.duplicate_idempotency_keys,
        nonce,
    );
    let stock = stock::judge(&audit, &confirmed.promised);

    let mut checks = vec![
        confirmed.check(listing.is_some()),
        server.duplicate_check(listing.is_some()),
    ];
    checks.extend(server.phantom_check(ledger));
    checks.extend(stock.checks());
    checks.push(Check {
        check: "vanished_carts",
        compared: "every cart a shopper was given, looked up again".into(),
        items: ledger.carts.len() as u64,
        expected: "0".into(),
        actual: format!(
            "{} of {} carts missing",
            count(vanished_carts),
            count(ledger.carts.len() as u64)
        ),
        holds: vanished_carts == 0,
    });
    Ok(InvariantReport {
        lost_orders: confirmed.lost(),
        duplicate_orders: server.duplicates,
        phantom_orders: server.phantoms,
        oversold: stock.oversold,
        vanished_carts,
        checks,
        stock: stock.products,
    })
}

/// Keys as a set, for lookups.
fn keys(list: &[String]) -> HashSet<&str> {
    list.iter().map(String::as_str).collect()
}
