//! Checkout: turning a cart into a confirmed order in one `BEGIN IMMEDIATE`
//! transaction (check the key, decrement stock only where enough is left, record the
//! order and its lines, mark the cart), and reading orders back. The UNIQUE
//! constraint on `orders.idempotency_key` is what guarantees one order per key; the
//! lookup before it only turns a repeat into a replay of the first answer.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::cart::{cart_order, load_cart};
use super::{CartLine, Store, StoreError, faults, unix_millis};
use crate::faults::Fault;

pub type OrderLine = CartLine;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub order_id: i64,
    pub status: String,
    pub total_cents: i64,
    pub cart_id: i64,
    pub idempotency_key: String,
    pub created_at_ms: i64,
    pub items: Vec<OrderLine>,
}

/// What a checkout will do, read before the slow part (pricing work, payment wait)
/// so that a repeated key or a bad cart is answered without paying twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutPlan {
    /// The key was used for this cart already: answer with that order.
    AlreadyOrdered(Order),
    /// Go ahead: these lines, at current prices.
    Ready {
        lines: Vec<CartLine>,
        total_cents: i64,
    },
}

impl Store {
    pub fn plan_checkout(&self, cart_id: i64, key: &str) -> Result<CheckoutPlan, StoreError> {
        let repeat_blind = self.faults.on(Fault::DuplicateOnRetry);
        let tx = self.conn.unchecked_transaction()?;
        if !repeat_blind && let Some(order) = order_for_key(&tx, cart_id, key)? {
            return Ok(CheckoutPlan::AlreadyOrdered(order));
        }
        let cart = checkable_cart(&tx, cart_id, repeat_blind)?;
        tx.finish()?;
        Ok(CheckoutPlan::Ready {
            lines: cart.items,
            total_cents: cart.total_cents,
        })
    }

    /// Confirms the order; returns it and whether it already existed for this key.
    /// Out of stock rolls everything back (dropping the transaction); so does a full
    /// disk (nothing is confirmed, the same key succeeds later).
    pub fn checkout(&mut self, cart_id: i64, key: &str) -> Result<(Order, bool), StoreError> {
        let result = self.checkout_once(cart_id, key);
        self.after_write(result)
    }

    fn checkout_once(&mut self, cart_id: i64, key: &str) -> Result<(Order, bool), StoreError> {
        let repeat_blind = self.faults.on(Fault::DuplicateOnRetry);
        let stock_update = match self.faults.picks(Fault::Oversell, key) {
            true => faults::UNGUARDED_STOCK_UPDATE,
            false => "UPDATE products SET stock = stock - ?2 WHERE id = ?1 AND stock >= ?2",
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !repeat_blind && let Some(order) = order_for_key(&tx, cart_id, key)? {
            return Ok((order, true));
        }
        let cart = checkable_cart(&tx, cart_id, repeat_blind)?;
        for line in &cart.items {
            let changed = tx
                .prepare_cached(stock_update)?
                .execute(params![line.product_id, line.quantity])?;
            if changed == 0 {
                let available: i64 = tx
                    .prepare_cached("SELECT stock FROM products WHERE id = ?1")?
                    .query_row([line.product_id], |r| r.get(0))?;
                return Err(StoreError::OutOfStock {
                    product_id: line.product_id,
                    wanted: line.quantity,
                    available,
                });
            }
        }
        let created_at_ms = unix_millis();
        tx.prepare_cached(
            "INSERT INTO orders (idempotency_key, cart_id, status, total_cents, created_at)
             VALUES (?1, ?2, 'confirmed', ?3, ?4)",
        )?
        .execute(params![key, cart_id, cart.total_cents, created_at_ms])?;
        let order_id = tx.last_insert_rowid();
        {
            let mut line_insert = tx.prepare_cached(
                "INSERT INTO order_items (order_id, product_id, quantity, price_cents)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for line in &cart.items {
                line_insert.execute(params![
                    order_id,
                    line.product_id,
                    line.quantity,
                    line.price_cents
                ])?;
            }
        }
        tx.prepare_cached("UPDATE carts SET order_id = ?2 WHERE id = ?1")?
            .execute([cart_id, order_id])?;
        if self.faults.picks(Fault::PhantomOrder, key) {
            faults::book_phantom(&tx, order_id, &cart.items, cart.total_cents)?;
        }
        if self.faults.picks(Fault::AckBeforeCommit, key) {
            // Dropping the transaction rolls it back; the order is answered anyway.
            drop(tx);
        } else {
            tx.commit()?;
        }
        let order = Order {
            order_id,
            status: "confirmed".to_owned(),
            total_cents: cart.total_cents,
            cart_id,
            idempotency_key: key.to_owned(),
            created_at_ms,
            items: cart.items,
        };
        Ok((order, false))
    }

    pub fn order(&self, order_id: i64) -> Result<Order, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let order = load_order(&tx, "id = ?1", params![order_id])?
            .ok_or(StoreError::OrderNotFound(order_id))?;
        tx.finish()?;
        Ok(order)
    }
}

/// The order already recorded for `key`: `Some` if it was for this cart, an error if
/// the key was used for another cart.
fn order_for_key(
    tx: &Transaction<'_>,
    cart_id: i64,
    key: &str,
) -> Result<Option<Order>, StoreError> {
    match load_order(tx, "idempotency_key = ?1", params![key])? {
        Some(order) if order.cart_id == cart_id => Ok(Some(order)),
        Some(_) => Err(StoreError::KeyReused {
            key: key.to_owned(),
        }),
        None => Ok(None),
    }
}

/// The cart to check out; `repeat_blind` (fault `duplicate-on-retry`) overlooks that
/// it was checked out already.
fn checkable_cart(
    tx: &Transaction<'_>,
    cart_id: i64,
    repeat_blind: bool,
) -> Result<super::Cart, StoreError> {
    if let Some(order_id) = cart_order(tx, cart_id)?
        && !repeat_blind
    {
        return Err(StoreError::CartCheckedOut { cart_id, order_id });
    }
    let cart = load_cart(tx, cart_id)?;
    if cart.items.is_empty() {
        return Err(StoreError::EmptyCart(cart_id));
    }
    Ok(cart)
}

fn load_order(
    tx: &Transaction<'_>,
    condition: &str,
    args: impl rusqlite::Params,
) -> Result<Option<Order>, StoreError> {
    let sql = format!(
        "SELECT id, status, total_cents, cart_id, idempotency_key, created_at
         FROM orders WHERE {condition}"
    );
    let Some(mut order) = tx
        .prepare_cached(&sql)?
        .query_row(args, |r| {
            Ok(Order {
                order_id: r.get(0)?,
                status: r.get(1)?,
                total_cents: r.get(2)?,
                cart_id: r.get(3)?,
                idempotency_key: r.get(4)?,
                created_at_ms: r.get(5)?,
                items: Vec::new(),
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = tx.prepare_cached(
        "SELECT product_id, quantity, price_cents FROM order_items
         WHERE order_id = ?1 ORDER BY product_id",
    )?;
    order.items = stmt
        .query_map([order.order_id], |r| {
            Ok(OrderLine {
                product_id: r.get(0)?,
                quantity: r.get(1)?,
                price_cents: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(order))
}
