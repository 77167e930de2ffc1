//! The report's stock table: for the hot products of each mode (those that sold out,
//! then the largest shares of their stock, up to [`MAX_HOT`]), the units in stock at
//! the start, sold, left, and promised to shoppers, from stock.csv. Every product is
//! in that file; the page shows where a sale was decided.

use super::{Block, Cell, Span, Table, Tone};
use crate::report::data::RunData;
use crate::report::fmt;
use crate::runfolder::StockRow;

/// Products shown per mode.
const MAX_HOT: usize = 5;
/// Products shown per mode even when none sold out.
const MIN_HOT: usize = 2;

pub fn hot_products(run: &RunData) -> Vec<Block> {
    let mut rows = Vec::new();
    for mode in run.mode_names() {
        rows.extend(hot_of(&run.stock, mode).into_iter().map(row));
    }
    if rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(3, "Stock of the hot products".into()),
        Block::Para(vec![Span::Toned(
            Tone::Muted,
            "Products that sold out, then those that sold the largest share of their stock; \
             every product is in stock.csv. Sold: units in the server's order lines; \
             promised: units in the confirmations shoppers received."
                .into(),
        )]),
        Block::Table(Table {
            head: vec![
                Cell::text("mode"),
                Cell::text("product"),
                Cell::num("stock at start"),
                Cell::num("sold"),
                Cell::num("left"),
                Cell::num("promised"),
                Cell::text("state"),
            ],
            rows,
        }),
    ]
}

/// The hot products of `mode`, hottest first.
fn hot_of<'a>(stock: &'a [StockRow], mode: &str) -> Vec<&'a StockRow> {
    let share = |r: &StockRow| r.sold as f64 / r.initial_stock.max(1) as f64;
    let mut sold: Vec<&StockRow> = stock
        .iter()
        .filter(|r| r.mode == mode && r.sold > 0)
        .collect();
    sold.sort_by(|a, b| share(b).total_cmp(&share(a)));
    let out_of_stock = sold.iter().filter(|r| r.stock <= 0).count();
    sold.truncate(out_of_stock.clamp(MIN_HOT, MAX_HOT));
    sold
}

fn row(r: &StockRow) -> Vec<Cell> {
    let signed = |n: i64| match n < 0 {
        true => format!("-{}", fmt::count(n.unsigned_abs())),
        false => fmt::count(n.unsigned_abs()),
    };
    let beyond =
        r.stock < 0 || r.sold > r.initial_stock || r.promised.is_some_and(|p| p > r.initial_stock);
    let balanced = r.initial_stock == r.stock + r.sold;
    let state = match (beyond, balanced, r.stock) {
        (true, _, _) => Cell::text("OVERSOLD").tone(Tone::Bad),
        (false, false, _) => Cell::text("UNBALANCED").tone(Tone::Bad),
        (false, true, 0) => Cell::text("sold out").tone(Tone::Good),
        _ => Cell::text("in stock"),
    };
    vec![
        Cell::text(r.mode.clone()),
        Cell::text(r.product.clone()),
        Cell::num(signed(r.initial_stock)),
        Cell::num(signed(r.sold)),
        Cell::num(signed(r.stock)),
        Cell::num(r.promised.map_or("-".into(), signed)),
        state,
    ]
}
