//! The audit listings the harness checks a run against: every order page by page
//! (`GET /admin/orders?after=ID`), in id order, with the key and cart each was booked
//! under; and the stock of every product with the units its order lines sold, for the
//! audit view. Both are read from the rows themselves in one read transaction, never
//! from counters the code under test keeps. README documents the formats.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// Most orders one listing page may hold.
pub const MAX_PAGE: i64 = 5000;

/// One order as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedOrder {
    pub order_id: i64,
    pub idempotency_key: String,
    pub cart_id: i64,
    pub total_cents: i64,
}

/// One page of the listing; `next` is the `after` of the following page, `None` on
/// the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderPage {
    pub orders: Vec<ListedOrder>,
    pub next: Option<String>,
}

/// One product's stock in the audit view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductStock {
    pub product_id: i64,
    pub initial_stock: i64,
    pub stock: i64,
    /// Units in order lines.
    pub sold: i64,
}

/// `after` (an order id; empty or absent: the first page) and `limit` (default and
/// most: [`MAX_PAGE`]) from the listing's query string.
pub fn listing_query(query: &str) -> Result<(i64, i64), String> {
    let (mut after, mut limit) = (0, MAX_PAGE);
    for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        let number = |what: &str| {
            value
                .parse::<i64>()
                .map_err(|_| format!("{what} must be a whole number, got {value:?}"))
        };
        match name {
            "after" if value.is_empty() => {}
            "after" => after = number("after")?,
            "limit" => limit = number("limit")?.clamp(1, MAX_PAGE),
            _ => {}
        }
    }
    Ok((after, limit))
}

impl Store {
    /// Orders with an id above `after`, at most `limit` (1..=[`MAX_PAGE`]).
    pub fn order_page(&self, after: i64, limit: i64) -> Result<OrderPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let orders = self
            .conn
            .prepare_cached(
                "SELECT id, idempotency_key, cart_id, total_cents FROM orders
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after, limit], |r| {
                Ok(ListedOrder {
                    order_id: r.get(0)?,
                    idempotency_key: r.get(1)?,
                    cart_id: r.get(2)?,
                    total_cents: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let full = i64::try_from(orders.len()).unwrap_or(i64::MAX) >= limit;
        let next = orders
            .last()
            .filter(|_| full)
            .map(|o| o.order_id.to_string());
        Ok(OrderPage { orders, next })
    }
}

/// Every product's stock and sold units, in id order, within the caller's transaction.
pub(super) fn stock_by_product(
    tx: &rusqlite::Transaction<'_>,
) -> Result<Vec<ProductStock>, StoreError> {
    let sold: std::collections::HashMap<i64, i64> = tx
        .prepare_cached("SELECT product_id, SUM(quantity) FROM order_items GROUP BY product_id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let products = tx
        .prepare_cached("SELECT id, initial_stock, stock FROM products ORDER BY id")?
        .query_map([], |r| {
            Ok(ProductStock {
                product_id: r.get(0)?,
                initial_stock: r.get(1)?,
                stock: r.get(2)?,
                sold: 0,
            })
        })?
        .map(|p| {
            p.map(|mut p| {
                p.sold = sold.get(&p.product_id).copied().unwrap_or(0);
                p
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(products)
}
