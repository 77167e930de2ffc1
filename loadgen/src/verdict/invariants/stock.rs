//! Stock: was anything sold that was not there, and do the books balance? Per product
//! when the audit view lists products (else on its totals), each product's units sold
//! (its order lines), stock left and units promised to shoppers (their confirmations'
//! items) are held against its initial stock. `oversold` counts the units the books
//! cannot account for: sold or promised beyond the stock, stock below zero, or stock +
//! sold different from the initial stock, per product, without counting one unit
//! twice. Pure functions over what `fetch` read.

use std::collections::HashMap;

use super::fetch::{Audit, id_text};
use super::{Check, ProductLine};
use crate::report::fmt::count;

/// What the stock checks found.
#[derive(Debug, Default)]
pub(super) struct Stock {
    pub oversold: u64,
    /// Units by which stock + sold misses the initial stock, summed over products.
    pub unbalanced: u64,
    pub products: Vec<ProductLine>,
    per_product: bool,
    initial: i64,
    stock: i64,
    sold: i64,
    first_oversold: Option<String>,
    products_off: u64,
}

/// Judges the audit view; `promised` is units per product from the confirmations.
pub(super) fn judge(audit: &Audit, promised: &Option<HashMap<String, i64>>) -> Stock {
    let mut out = Stock {
        initial: audit.initial_stock,
        stock: audit.stock,
        sold: audit.sold,
        ..Stock::default()
    };
    let Some(products) = &audit.per_product else {
        let promised_total = promised.as_ref().map(|p| p.values().sum());
        let line = ProductLine {
            product: "all".into(),
            initial_stock: audit.initial_stock,
            stock: audit.stock,
            sold: audit.sold,
            promised: promised_total,
        };
        let (over, off) = judge_line(&line);
        // The audit's own flag: one product below zero while the total is not.
        let over = over.max(u64::from(audit.negative_stock));
        out.oversold = over.max(off);
        out.unbalanced = off;
        out.products_off = u64::from(off > 0);
        if over > 0 {
            out.first_oversold = Some(describe(&line));
        }
        return out;
    };
    out.per_product = true;
    for p in products {
        let product = id_text(&p.product_id);
        let line = ProductLine {
            promised: promised
                .as_ref()
                .map(|m| m.get(&product).copied().unwrap_or(0)),
            product,
            initial_stock: p.initial_stock,
            stock: p.stock,
            sold: p.sold,
        };
        let (over, off) = judge_line(&line);
        out.oversold += over.max(off);
        out.unbalanced += off;
        out.products_off += u64::from(off > 0);
        if over > 0 && out.first_oversold.is_none() {
            out.first_oversold = Some(describe(&line));
        }
        out.products.push(line);
    }
    out
}

/// (units beyond the stock, units off balance) of one product.
fn judge_line(l: &ProductLine) -> (u64, u64) {
    let beyond = [
        -l.stock,
        l.sold - l.initial_stock,
        l.promised.unwrap_or(0) - l.initial_stock,
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
    .max(0) as u64;
    let off = (l.initial_stock - l.stock - l.sold).unsigned_abs();
    (beyond, off)
}

fn describe(l: &ProductLine) -> String {
    let promised = l
        .promised
        .map(|p| format!(", {} promised", count_signed(p)))
        .unwrap_or_default();
    format!(
        "product {}: {} in stock, {} sold, {} left{promised}",
        l.product,
        count_signed(l.initial_stock),
        count_signed(l.sold),
        count_signed(l.stock)
    )
}

fn count_signed(n: i64) -> String {
    match n < 0 {
        true => format!("-{}", count(n.unsigned_abs())),
        false => count(n.unsigned_abs()),
    }
}

impl Stock {
    /// The `oversold` and `stock_balance` rows.
    pub fn checks(&self) -> Vec<Check> {
        let items = self.products.len() as u64;
        let (over_what, balance_what) = match self.per_product {
            true => (
                "per product: units sold (order lines), units promised to shoppers and stock \
                 left, each against the initial stock",
                "per product: initial stock = stock left + units sold",
            ),
            false => (
                "the audit view's totals over every product (it lists no products): units \
                 sold, units promised to shoppers and stock left against the initial stock",
                "the audit view's totals: initial stock = stock left + units sold",
            ),
        };
        let mut oversold = format!(
            "{} units sold or promised beyond stock",
            count(self.oversold)
        );
        if let Some(first) = &self.first_oversold {
            oversold.push_str(&format!(" (first: {first})"));
        }
        let mut balance = format!(
            "{} + {} = {}",
            count_signed(self.stock),
            count_signed(self.sold),
            count_signed(self.stock + self.sold)
        );
        if self.unbalanced > 0 {
            balance.push_str(&format!(
                "; {} products off by {} units",
                count(self.products_off),
                count(self.unbalanced)
            ));
        }
        vec![
            Check {
                check: "oversold",
                compared: over_what.into(),
                items,
                expected: "0".into(),
                actual: oversold,
                holds: self.oversold == 0,
            },
            Check {
                check: "stock_balance",
                compared: balance_what.into(),
                items,
                expected: format!("initial {} = stock + sold", count_signed(self.initial)),
                actual: balance,
                holds: self.unbalanced == 0,
            },
        ]
    }
}
