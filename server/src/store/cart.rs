//! Carts and the idempotency of the cart-building POSTs. A request that carries an
//! `Idempotency-Key` records its first successful response body under (scope, key)
//! in the same transaction as its effect; the same key again replays that body
//! instead of creating a second cart or adding the items twice. The primary key on
//! `request_keys` makes a second record impossible, whatever the code above does.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::{Cart, CartLine, Store, StoreError, unix_millis};

/// A response body produced by a write, or replayed for a repeated key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub body: String,
    pub replayed: bool,
}

const SCOPE_CARTS: &str = "POST /carts";
const SCOPE_ITEMS: &str = "POST /carts/{id}/items";

#[derive(Serialize)]
struct CartCreated {
    cart_id: i64,
}

impl Store {
    pub fn create_cart(&mut self, key: Option<&str>) -> Result<Recorded, StoreError> {
        let result = self.create_cart_once(key);
        self.after_write(result)
    }

    /// Adds `quantity` of a product to a cart (summing with a line already there) and
    /// returns the cart as JSON.
    pub fn add_item(
        &mut self,
        cart_id: i64,
        product_id: i64,
        quantity: i64,
        key: Option<&str>,
    ) -> Result<Recorded, StoreError> {
        let result = self.add_item_once(cart_id, product_id, quantity, key);
        self.after_write(result)
    }

    fn create_cart_once(&mut self, key: Option<&str>) -> Result<Recorded, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(replayed) = replay(&tx, SCOPE_CARTS, key, "")? {
            return Ok(replayed);
        }
        tx.prepare_cached("INSERT INTO carts (created_at) VALUES (?1)")?
            .execute([unix_millis()])?;
        let cart_id = tx.last_insert_rowid();
        let body = serde_json::to_string(&CartCreated { cart_id })?;
        record(&tx, SCOPE_CARTS, key, "", &body)?;
        tx.commit()?;
        self.remember_cart(cart_id);
        Ok(Recorded {
            body,
            replayed: false,
        })
    }

    fn add_item_once(
        &mut self,
        cart_id: i64,
        product_id: i64,
        quantity: i64,
        key: Option<&str>,
    ) -> Result<Recorded, StoreError> {
        let fingerprint = format!("{cart_id}:{product_id}:{quantity}");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(replayed) = replay(&tx, SCOPE_ITEMS, key, &fingerprint)? {
            return Ok(replayed);
        }
        let order_id = cart_order(&tx, cart_id)?;
        if let Some(order_id) = order_id {
            return Err(StoreError::CartCheckedOut { cart_id, order_id });
        }
        let known: Option<i64> = tx
            .prepare_cached("SELECT id FROM products WHERE id = ?1")?
            .query_row([product_id], |r| r.get(0))
            .optional()?;
        if known.is_none() {
            return Err(StoreError::ProductNotFound(product_id));
        }
        tx.prepare_cached(
            "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?1, ?2, ?3)
             ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = quantity + excluded.quantity",
        )?
        .execute(params![cart_id, product_id, quantity])?;
        let cart = load_cart(&tx, cart_id)?;
        let body = serde_json::to_string(&cart)?;
        record(&tx, SCOPE_ITEMS, key, &fingerprint, &body)?;
        tx.commit()?;
        Ok(Recorded {
            body,
            replayed: false,
        })
    }

    pub fn cart(&self, cart_id: i64) -> Result<Cart, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        cart_order(&tx, cart_id)?;
        let cart = load_cart(&tx, cart_id)?;
        tx.finish()?;
        Ok(cart)
    }
}

/// The order a cart was checked out as, if any; `CartNotFound` if there is no cart.
pub(super) fn cart_order(tx: &Transaction<'_>, cart_id: i64) -> Result<Option<i64>, StoreError> {
    tx.prepare_cached("SELECT order_id FROM carts WHERE id = ?1")?
        .query_row([cart_id], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .ok_or(StoreError::CartNotFound(cart_id))
}

/// The cart's lines at current prices.
pub(super) fn load_cart(tx: &Transaction<'_>, cart_id: i64) -> Result<Cart, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT ci.product_id, ci.quantity, p.price_cents
         FROM cart_items ci JOIN products p ON p.id = ci.product_id
         WHERE ci.cart_id = ?1 ORDER BY ci.product_id",
    )?;
    let items = stmt
        .query_map([cart_id], |r| {
            Ok(CartLine {
                product_id: r.get(0)?,
                quantity: r.get(1)?,
                price_cents: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let total_cents = items.iter().map(|l| l.quantity * l.price_cents).sum();
    Ok(Cart {
        cart_id,
        items,
        total_cents,
    })
}

fn replay(
    tx: &Transaction<'_>,
    scope: &str,
    key: Option<&str>,
    fingerprint: &str,
) -> Result<Option<Recorded>, StoreError> {
    let Some(key) = key else { return Ok(None) };
    let stored: Option<(String, String)> = tx
        .prepare_cached("SELECT fingerprint, body FROM request_keys WHERE scope = ?1 AND key = ?2")?
        .query_row([scope, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match stored {
        None => Ok(None),
        Some((stored_fingerprint, body)) if stored_fingerprint == fingerprint => {
            Ok(Some(Recorded {
                body,
                replayed: true,
            }))
        }
        Some(_) => Err(StoreError::KeyReused {
            key: key.to_owned(),
        }),
    }
}

fn record(
    tx: &Transaction<'_>,
    scope: &str,
    key: Option<&str>,
    fingerprint: &str,
    body: &str,
) -> Result<(), StoreError> {
    if let Some(key) = key {
        tx.prepare_cached(
            "INSERT INTO request_keys (scope, key, fingerprint, body) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute([scope, key, fingerprint, body])?;
    }
    Ok(())
}
