//! The store's faulty code paths, run only when a test-only fault is switched on
//! ([`crate::faults`]): the orders table without its UNIQUE constraints
//! (`duplicate-on-retry`), the second order nobody asked for (`phantom-order`), the
//! carts a draining process forgets (`lose-cart`), and the stock update without its
//! guard (`oversell`). The normal paths in `checkout` and `cart` call in here through
//! one-line hooks, so the shop's own code reads as it did.

use rusqlite::{Transaction, params};

use super::{CartLine, Store, StoreError, unix_millis};
use crate::faults::Fault;

/// `duplicate-on-retry`'s schema: the orders table as a shop without the UNIQUE
/// constraints would create it. Created before the normal schema, whose
/// `CREATE TABLE IF NOT EXISTS orders` then does nothing.
const ORDERS_WITHOUT_UNIQUE: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL,
    cart_id         INTEGER NOT NULL REFERENCES carts(id),
    status          TEXT    NOT NULL,
    total_cents     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);";

/// The stock update without `AND stock >= ?2`.
pub(super) const UNGUARDED_STOCK_UPDATE: &str =
    "UPDATE products SET stock = stock - ?2 WHERE id = ?1";

/// Runs before the schema is created.
pub(super) fn prepare_schema(
    tx: &Transaction<'_>,
    store_faults: &crate::faults::Faults,
) -> Result<(), StoreError> {
    if store_faults.on(Fault::DuplicateOnRetry) {
        tx.execute_batch(ORDERS_WITHOUT_UNIQUE)?;
    }
    Ok(())
}

/// `phantom-order`: beside order `order_id`, books the same lines again as an order of
/// a cart of its own under a key no shopper sent (a payment webhook replayed under the
/// provider's reference). Skipped when the stock would not cover it.
pub(super) fn book_phantom(
    tx: &Transaction<'_>,
    order_id: i64,
    lines: &[CartLine],
    total_cents: i64,
) -> Result<(), StoreError> {
    for line in lines {
        let stock: i64 = tx
            .prepare_cached("SELECT stock FROM products WHERE id = ?1")?
            .query_row([line.product_id], |r| r.get(0))?;
        if stock < line.quantity {
            return Ok(());
        }
    }
    let now = unix_millis();
    tx.prepare_cached("INSERT INTO carts (created_at) VALUES (?1)")?
        .execute([now])?;
    let cart_id = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO orders (idempotency_key, cart_id, status, total_cents, created_at)
         VALUES (?1, ?2, 'confirmed', ?3, ?4)",
    )?
    .execute(params![
        format!("phantom-{order_id}"),
        cart_id,
        total_cents,
        now
    ])?;
    let phantom_id = tx.last_insert_rowid();
    for line in lines {
        tx.prepare_cached("UPDATE products SET stock = stock - ?2 WHERE id = ?1")?
            .execute(params![line.product_id, line.quantity])?;
        tx.prepare_cached(
            "INSERT INTO order_items (order_id, product_id, quantity, price_cents)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            phantom_id,
            line.product_id,
            line.quantity,
            line.price_cents
        ])?;
    }
    tx.prepare_cached("UPDATE carts SET order_id = ?2 WHERE id = ?1")?
        .execute([cart_id, phantom_id])?;
    Ok(())
}

impl Store {
    /// `lose-cart`: remembers a cart this process created.
    pub(super) fn remember_cart(&mut self, cart_id: i64) {
        if self.faults.on(Fault::LoseCart) {
            self.own_carts.push(cart_id);
        }
    }

    /// `lose-cart`: deletes the picked share of the carts this process created that
    /// are still open (checked-out ones stay: their orders refer to them). Returns how
    /// many it deleted.
    pub fn drop_own_carts(&mut self) -> Result<usize, StoreError> {
        let carts = std::mem::take(&mut self.own_carts);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut dropped = 0;
        for cart_id in carts {
            if !self.faults.picks(Fault::LoseCart, &cart_id.to_string()) {
                continue;
            }
            let open: bool = tx
                .prepare_cached("SELECT COUNT(*) FROM carts WHERE id = ?1 AND order_id IS NULL")?
                .query_row([cart_id], |r| r.get::<_, i64>(0))?
                > 0;
            if open {
                tx.prepare_cached("DELETE FROM cart_items WHERE cart_id = ?1")?
                    .execute([cart_id])?;
                tx.prepare_cached("DELETE FROM carts WHERE id = ?1")?
                    .execute([cart_id])?;
                dropped += 1;
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// The lowest order id recorded for `key` (`duplicate-on-retry` loses the answer
    /// of that first order only).
    pub fn first_order_for_key(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT MIN(id) FROM orders WHERE idempotency_key = ?1")?
            .query_row([key], |r| r.get(0))?)
    }
}
