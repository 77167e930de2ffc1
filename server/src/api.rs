//! The shop's HTTP API: the request limits, routing, request parsing (JSON, ids, the
//! `Idempotency-Key` header) and handlers that call the [`Db`]. Every request's body
//! is read first, whatever the route, within the [`BodyLimits`] ([`crate::body`]):
//! 413 past the size limit and 408 past the deadline on every route, both with
//! `Connection: close`. Every response, errors included, gets `X-Worker-Pid` and
//! `X-Server-Version` here. Error answers and their statuses are in [`reply`];
//! connection handling and drain in [`crate::http`].

mod reply;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode, Uri};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use reply::{ApiError, Reply};
use reply::{json, ok_json, replayed};

use crate::body::{self, BodyLimits};
use crate::conn_io::Stamp;
use crate::db::Db;
use crate::faults::{self, AnswerLost, LoseAnswer};
use crate::pricing;
use crate::store::{CheckoutPlan, MAX_QUANTITY, Order, listing_query};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest request target, path and query (414 beyond, as for most servers: 8 KiB).
pub const MAX_TARGET: usize = 8 * 1024;
/// Largest request head, request line and header fields together (431 beyond; 414
/// when it is the request line that is too long).
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 200;
/// Longest part of a path quoted back in an error message.
const QUOTED_PATH: usize = 100;

/// Per-process state shared by every connection.
pub struct App {
    pub db: Db,
    pub pid: u32,
    pub version: String,
    pub checkout_cpu: Duration,
    pub checkout_io: Duration,
    pub body: BodyLimits,
    stamp: Arc<Stamp>,
    draining: AtomicBool,
}

impl App {
    pub fn new(
        db: Db,
        version: String,
        checkout_cpu: Duration,
        checkout_io: Duration,
        body: BodyLimits,
    ) -> App {
        let pid = std::process::id();
        let version_header = HeaderValue::from_str(&version)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-version-tag"));
        App {
            db,
            pid,
            stamp: Arc::new(Stamp {
                pid: HeaderValue::from(pid),
                version: version_header,
            }),
            version,
            checkout_cpu,
            checkout_io,
            body,
            draining: AtomicBool::new(false),
        }
    }

    /// The headers every answer carries, for answers written below hyper.
    pub fn stamp(&self) -> Arc<Stamp> {
        Arc::clone(&self.stamp)
    }

    /// From now on every response says `Connection: close`, so a client learns from
    /// its next answer that the connection ends, instead of finding it closed.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        faults::on_drain(&self.db);
    }
}

/// The hyper service: read the body, route, then stamp the worker headers on
/// whatever came out. Only a test-only fault makes it fail (hyper then closes the
/// connection unanswered).
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Reply, AnswerLost> {
    let mut reply = match answer(&app, req).await {
        Ok(reply) => reply,
        Err(error) => error.into_reply(),
    };
    if reply.extensions().get::<LoseAnswer>().is_some() {
        return Err(AnswerLost);
    }
    let headers = reply.headers_mut();
    headers.insert("x-worker-pid", app.stamp.pid.clone());
    headers.insert("x-server-version", app.stamp.version.clone());
    if app.draining.load(Ordering::Relaxed) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(reply)
}

/// Checks the target, reads the whole body, then routes. An answer given before the
/// body was read closes the connection (the unread rest cannot be told from the
/// next request).
async fn answer(app: &App, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    if target_len(&parts.uri) > MAX_TARGET {
        let error = ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("request target over {MAX_TARGET} bytes"),
        );
        return Err(if body.is_end_stream() {
            error
        } else {
            error.closing()
        });
    }
    let body = body::read(body, &app.body).await?;
    route(app, &parts, body).await
}

fn target_len(uri: &Uri) -> usize {
    uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
}

/// At most [`QUOTED_PATH`] bytes of a path, for an error message.
fn quoted(path: &str) -> &str {
    let mut end = path.len().min(QUOTED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

async fn route(app: &App, req: &Parts, body: Bytes) -> Result<Reply, ApiError> {
    let path = req.uri.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = &req.method;
    let allow = |allowed: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError {
                allow: Some(allowed),
                ..ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!(
                        "{method} is not allowed on {} (allowed: {allowed})",
                        quoted(path)
                    ),
                )
            })
        }
    };
    let get = *method == Method::GET || *method == Method::HEAD;
    let post = *method == Method::POST;
    match segments.as_slice() {
        ["products"] => {
            allow("GET", get)?;
            let products = app.db.call(|s| s.products()).await?;
            ok_json(StatusCode::OK, &products)
        }
        ["products", id] => {
            allow("GET", get)?;
            let id = parse_id(id, "product")?;
            let product = app.db.call(move |s| s.product(id)).await?;
            ok_json(StatusCode::OK, &product)
        }
        ["carts"] => {
            allow("POST", post)?;
            let key = idempotency_key(req, false)?;
            let created = app.db.call(move |s| s.create_cart(key.as_deref())).await?;
            Ok(replayed(
                json(StatusCode::CREATED, created.body),
                created.replayed,
            ))
        }
        ["carts", id] => {
            allow("GET", get)?;
            let id = parse_id(id, "cart")?;
            let cart = app.db.call(move |s| s.cart(id)).await?;
            ok_json(StatusCode::OK, &cart)
        }
        ["carts", id, "items"] => {
            allow("POST", post)?;
            let cart_id = parse_id(id, "cart")?;
            let key = idempotency_key(req, false)?;
            let AddItem {
                product_id,
                quantity,
            } = parse_json(&body)?;
            if !(1..=MAX_QUANTITY).contains(&quantity) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("quantity must be between 1 and {MAX_QUANTITY}, got {quantity}"),
                ));
            }
            let added = app
                .db
                .call(move |s| s.add_item(cart_id, product_id, quantity, key.as_deref()))
                .await?;
            Ok(replayed(json(StatusCode::OK, added.body), added.replayed))
        }
        ["checkout"] => {
            allow("POST", post)?;
            checkout(app, req, &body).await
        }
        ["orders", id] => {
            allow("GET", get)?;
            let id = parse_id(id, "order")?;
            let order = app.db.call(move |s| s.order(id)).await?;
            ok_json(StatusCode::OK, &order)
        }
        ["healthz"] => {
            allow("GET", get)?;
            let health = serde_json::json!({
                "status": "ok",
                "pid": app.pid,
                "version": app.version,
            });
            ok_json(StatusCode::OK, &health)
        }
        ["admin", "audit"] => {
            allow("GET", get)?;
            let audit = app.db.call(|s| s.audit()).await?;
            ok_json(StatusCode::OK, &audit)
        }
        ["admin", "orders"] => {
            allow("GET", get)?;
            let query = req.uri.query().unwrap_or("");
            let (after, limit) =
                listing_query(query).map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, why))?;
            let page = app.db.call(move |s| s.order_page(after, limit)).await?;
            ok_json(StatusCode::OK, &page)
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route for {}", quoted(path)),
        )),
    }
}

#[derive(Deserialize)]
struct AddItem {
    product_id: i64,
    quantity: i64,
}

#[derive(Deserialize)]
struct CheckoutRequest {
    cart_id: i64,
}

/// Checkout: plan (cheap, answers repeats and bad carts), price (CPU), pay (I/O
/// wait), then confirm in one transaction.
async fn checkout(app: &App, req: &Parts, body: &[u8]) -> Result<Reply, ApiError> {
    let Some(key) = idempotency_key(req, true)? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "checkout needs an Idempotency-Key header",
        ));
    };
    let CheckoutRequest { cart_id } = parse_json(body)?;
    let plan_key = key.clone();
    let plan = app
        .db
        .call(move |s| s.plan_checkout(cart_id, &plan_key))
        .await?;
    let lines = match plan {
        CheckoutPlan::AlreadyOrdered(order) => return confirmation(&order, true),
        CheckoutPlan::Ready { lines, .. } => lines,
    };
    std::hint::black_box(pricing::compute(&lines, app.checkout_cpu));
    if !app.checkout_io.is_zero() {
        tokio::time::sleep(app.checkout_io).await;
    }
    let (order, was_replayed) = app.db.call(move |s| s.checkout(cart_id, &key)).await?;
    if faults::loses_answer(&app.db, &order).await {
        return Ok(faults::lost_answer());
    }
    confirmation(&order, was_replayed)
}

/// The confirmation is the whole order (as `GET /orders/{id}` shows it), so the
/// shopper is told its key, cart, total and items.
fn confirmation(order: &Order, was_replayed: bool) -> Result<Reply, ApiError> {
    Ok(replayed(ok_json(StatusCode::CREATED, order)?, was_replayed))
}

fn parse_id(text: &str, what: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no {what} with id {:?}", quoted(text)),
        )),
    }
}

/// The `Idempotency-Key` header: absent is `None`; present must be 1..=200 visible
/// ASCII characters.
fn idempotency_key(req: &Parts, required: bool) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let valid =
        !text.is_empty() && text.len() <= MAX_KEY_LEN && text.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        let need = if required { " (required here)" } else { "" };
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters{need}"),
        ));
    }
    Ok(Some(text.to_owned()))
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON body: {error}"),
        )
    })
}

#[cfg(test)]
mod tests;
