//! The shop's state in SQLite: schema, seeding, catalog reads, carts, checkout and the
//! audit view. One [`Store`] wraps one connection; every serving process opens its own
//! (WAL mode, so readers never wait for the writer and several processes share one
//! file). All writes run in `BEGIN IMMEDIATE` transactions so a writer takes the lock
//! up front and waits for it (busy timeout) instead of failing half-way. A full disk
//! is [`StoreError::DiskFull`], handled in [`space`]. This module knows nothing about
//! HTTP; [`crate::db`] runs it off the event loop.

mod cart;
mod checkout;
mod faults;
mod listing;
mod space;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

pub use checkout::{CheckoutPlan, Order};
pub use listing::{ProductStock, listing_query};

use crate::cli::Seed;
use crate::faults::Faults;

/// How long a statement waits for another process's write lock before giving up.
/// Generous: under the test loads a busy database must mean a slow answer, not a 5xx.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest quantity one add-to-cart request may carry.
pub const MAX_QUANTITY: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The volume is full: the transaction was rolled back, nothing was written.
    #[error("the disk is full, nothing was written; retry later ({0})")]
    DiskFull(rusqlite::Error),
    #[error("cannot serialize a response: {0}")]
    Json(#[from] serde_json::Error),
    #[error("product {0} not found")]
    ProductNotFound(i64),
    #[error("cart {0} not found")]
    CartNotFound(i64),
    #[error("order {0} not found")]
    OrderNotFound(i64),
    #[error("cart {0} is empty")]
    EmptyCart(i64),
    #[error("cart {cart_id} was already checked out as order {order_id}")]
    CartCheckedOut { cart_id: i64, order_id: i64 },
    #[error("not enough stock for product {product_id}: {wanted} wanted, {available} left")]
    OutOfStock {
        product_id: i64,
        wanted: i64,
        available: i64,
    },
    #[error("idempotency key {key:?} was already used for a different request")]
    KeyReused { key: String },
    #[error("the database thread has stopped")]
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartLine {
    pub product_id: i64,
    pub quantity: i64,
    pub price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cart {
    pub cart_id: i64,
    pub items: Vec<CartLine>,
    pub total_cents: i64,
}

/// Stock and order counts, computed from the rows themselves (not from counters the
/// code under test maintains), so the harness can check the invariants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    pub products: i64,
    pub initial_stock: i64,
    pub stock: i64,
    pub sold: i64,
    pub orders: i64,
    pub order_lines: i64,
    pub carts: i64,
    pub revenue_cents: i64,
    pub duplicate_idempotency_keys: i64,
    pub stock_balanced: bool,
    pub negative_stock: bool,
    /// Each product's stock and units sold, for checks per product.
    pub per_product: Vec<ProductStock>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    price_cents   INTEGER NOT NULL CHECK (price_cents > 0),
    initial_stock INTEGER NOT NULL,
    stock         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS carts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    order_id   INTEGER
);
CREATE TABLE IF NOT EXISTS cart_items (
    cart_id    INTEGER NOT NULL REFERENCES carts(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (cart_id, product_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    cart_id         INTEGER NOT NULL UNIQUE REFERENCES carts(id),
    status          TEXT    NOT NULL,
    total_cents     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id    INTEGER NOT NULL REFERENCES orders(id),
    product_id  INTEGER NOT NULL REFERENCES products(id),
    quantity    INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS request_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
";

pub struct Store {
    conn: Connection,
    /// The database file, to ask its volume for free space.
    path: PathBuf,
    space: space::Pressure,
    /// Test-only faults this store runs with (none in a normal shop).
    faults: Faults,
    /// `lose-cart`: the carts this process created.
    own_carts: Vec<i64>,
}

impl Store {
    /// Opens (creating and seeding if new) the database. Safe to call from several
    /// processes at once: schema creation and seeding run under the write lock.
    pub fn open(path: &Path, seed: Seed) -> Result<Store, StoreError> {
        Store::open_with(path, seed, crate::faults::active().clone())
    }

    /// [`Store::open`] with the given test-only faults instead of the process's.
    pub fn open_with(path: &Path, seed: Seed, faults: Faults) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_handler(Some(wait_for_lock))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Sqlite(rusqlite::Error::InvalidParameterName(
                format!("journal_mode is {mode}, expected wal"),
            )));
        }
        // NORMAL in WAL mode: a committed transaction survives the death of the
        // process (the WAL is in the OS page cache); only power loss can lose it.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Once a checkpoint has let the WAL restart, shrink its file back.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        faults::prepare_schema(&tx, &faults)?;
        tx.execute_batch(SCHEMA)?;
        let existing: i64 = tx.query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0))?;
        if existing == 0 {
            let mut insert = tx.prepare(
                "INSERT INTO products (id, name, price_cents, initial_stock, stock)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for id in 1..=i64::from(seed.products) {
                let stock = match seed.product_stock {
                    Some(p) if i64::from(p.id) == id => p.units,
                    _ => seed.stock,
                };
                insert.execute(params![id, format!("Product {id}"), price_of(id), stock])?;
            }
        }
        tx.commit()?;
        Ok(Store {
            conn,
            path: path.to_owned(),
            space: space::Pressure::default(),
            faults,
            own_carts: Vec::new(),
        })
    }

    /// Stops this connection from checkpointing after its commits. Used by cluster
    /// workers: with several processes always in a transaction, a checkpoint can
    /// never finish, so every commit past the threshold retried one (with fsyncs)
    /// and the WAL still grew (240 MB in 5 s of the checkout benchmark, p99 85-110
    /// ms); the master checkpoints instead ([`Store::checkpoint`]), except on a
    /// volume short of space (see [`space`]).
    pub fn disable_auto_checkpoint(&mut self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Checkpoints the WAL: PASSIVE (copies what it can without waiting for or
    /// blocking anyone); then, if the WAL is past `restart_frames` (under constant
    /// load readers always hold it, so it never restarts by itself: 1.9 GB in 5 s),
    /// RESTART, which waits for the writers in progress, briefly holds new ones off,
    /// and lets the next writer start the WAL from its beginning. On a volume short
    /// of space ([`space::LOW_SPACE`]) it truncates the WAL file instead whenever the
    /// WAL is not empty, so the WAL cannot fill the volume. Returns the WAL frames
    /// left after the first pass.
    pub fn checkpoint(&self, restart_frames: i64) -> Result<i64, StoreError> {
        let log: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
        if log > 0 && self.short_of_space() {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        } else if log > restart_frames {
            self.conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
        }
        Ok(log)
    }

    pub fn products(&self) -> Result<Vec<Product>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, price_cents, stock FROM products ORDER BY id")?;
        let rows = stmt.query_map([], product_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn product(&self, id: i64) -> Result<Product, StoreError> {
        self.conn
            .prepare_cached("SELECT id, name, price_cents, stock FROM products WHERE id = ?1")?
            .query_row([id], product_from_row)
            .optional()?
            .ok_or(StoreError::ProductNotFound(id))
    }

    pub fn audit(&self) -> Result<Audit, StoreError> {
        // One read transaction: every figure comes from the same snapshot.
        let tx = self.conn.unchecked_transaction()?;
        let (products, initial_stock, stock, negative): (i64, i64, i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(initial_stock), 0), COALESCE(SUM(stock), 0),
                    COALESCE(SUM(stock < 0), 0)
             FROM products",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let (sold, order_lines): (i64, i64) = tx.query_row(
            "SELECT COALESCE(SUM(quantity), 0), COUNT(*) FROM order_items",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (orders, revenue_cents): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(total_cents), 0) FROM orders",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let duplicate_idempotency_keys: i64 = tx.query_row(
            "SELECT COUNT(*) FROM (SELECT idempotency_key FROM orders
                                   GROUP BY idempotency_key HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )?;
        let carts: i64 = tx.query_row("SELECT COUNT(*) FROM carts", [], |r| r.get(0))?;
        let per_product = listing::stock_by_product(&tx)?;
        tx.finish()?;
        Ok(Audit {
            products,
            initial_stock,
            stock,
            sold,
            orders,
            order_lines,
            carts,
            revenue_cents,
            duplicate_idempotency_keys,
            stock_balanced: initial_stock == stock + sold,
            negative_stock: negative > 0,
            per_product,
        })
    }
}

/// Busy handler: called with the number of earlier calls while another process holds
/// the write lock. SQLite's own timeout sleeps up to 100 ms between tries, which
/// under several contending processes showed as a 300 ms p99 for writes; this polls
/// every 25 us at first and at most every 1 ms, until [`BUSY_TIMEOUT`] has passed.
fn wait_for_lock(count: i32) -> bool {
    let count = u64::try_from(count).unwrap_or(0);
    let pause = Duration::from_micros((25 * (count + 1)).min(1000));
    // Sleeps grow 25 us per call up to 1 ms (40 calls, ~20 ms), then 1 ms each.
    let waited_ms = if count < 40 {
        count * (count + 1) * 25 / 2000
    } else {
        20 + (count - 40)
    };
    if Duration::from_millis(waited_ms) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(pause);
    true
}

/// Deterministic catalog prices between 1.99 and 100.98.
fn price_of(id: i64) -> i64 {
    199 + (id * 7919) % 9900
}

fn product_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: row.get(0)?,
        name: row.get(1)?,
        price_cents: row.get(2)?,
        stock: row.get(3)?,
    })
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
