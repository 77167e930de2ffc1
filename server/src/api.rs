//! The shop's HTTP API: routing, request parsing (size limits, JSON, ids, the
//! `Idempotency-Key` header), handlers that call the [`Db`], and the mapping of store
//! errors to status codes with a JSON error body. Every response, errors included,
//! gets `X-Worker-Pid` and `X-Server-Version` here. Connection handling and drain live
//! in [`crate::http`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::db::Db;
use crate::faults::{self, AnswerLost, LoseAnswer};
use crate::pricing;
use crate::store::{CheckoutPlan, MAX_QUANTITY, Order, StoreError, listing_query};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 200;

pub type Reply = Response<Full<Bytes>>;

/// Per-process state shared by every connection.
pub struct App {
    pub db: Db,
    pub pid: u32,
    pub version: String,
    pub checkout_cpu: Duration,
    pub checkout_io: Duration,
    pid_header: HeaderValue,
    version_header: HeaderValue,
    draining: AtomicBool,
}

impl App {
    pub fn new(db: Db, version: String, checkout_cpu: Duration, checkout_io: Duration) -> App {
        let pid = std::process::id();
        let version_header = HeaderValue::from_str(&version)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-version-tag"));
        App {
            db,
            pid,
            pid_header: HeaderValue::from(pid),
            version,
            version_header,
            checkout_cpu,
            checkout_io,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on every response says `Connection: close`, so a client learns from
    /// its next answer that the connection ends, instead of finding it closed.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        faults::on_drain(&self.db);
    }
}

/// The hyper service: route, then stamp the worker headers on whatever came out. Only
/// a test-only fault makes it fail (hyper then closes the connection unanswered).
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Reply, AnswerLost> {
    let mut reply = match route(&app, req).await {
        Ok(reply) => reply,
        Err(error) => error.into_reply(),
    };
    if reply.extensions().get::<LoseAnswer>().is_some() {
        return Err(AnswerLost);
    }
    let headers = reply.headers_mut();
    headers.insert("x-worker-pid", app.pid_header.clone());
    headers.insert("x-server-version", app.version_header.clone());
    if app.draining.load(Ordering::Relaxed) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(reply)
}

/// An answer other than success, with the status it maps to.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    fn into_reply(self) -> Reply {
        if self.status.is_server_error() {
            crate::log_event!("api", "{} {}", self.status.as_u16(), self.message);
        }
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut reply = json(self.status, body);
        if let Some(allow) = self.allow {
            reply
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was not read: the connection cannot be reused.
            reply
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        reply
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let status = match &error {
            StoreError::ProductNotFound(_)
            | StoreError::CartNotFound(_)
            | StoreError::OrderNotFound(_) => StatusCode::NOT_FOUND,
            StoreError::OutOfStock { .. } | StoreError::CartCheckedOut { .. } => {
                StatusCode::CONFLICT
            }
            StoreError::EmptyCart(_) => StatusCode::BAD_REQUEST,
            StoreError::KeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::Sqlite(_) | StoreError::Json(_) | StoreError::Closed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, error.to_string())
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

fn ok_json(status: StatusCode, value: &impl serde::Serialize) -> Result<Reply, ApiError> {
    let body = serde_json::to_vec(value).map_err(StoreError::from)?;
    Ok(json(status, body))
}

fn replayed(mut reply: Reply, was_replayed: bool) -> Reply {
    if was_replayed {
        reply
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    reply
}

async fn route(app: &App, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let allow = |allowed: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError {
                allow: Some(allowed),
                ..ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} is not allowed on {path} (allowed: {allowed})"),
                )
            })
        }
    };
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
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
            let key = idempotency_key(&req, false)?;
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
            let key = idempotency_key(&req, false)?;
            let AddItem {
                product_id,
                quantity,
            } = read_json(req).await?;
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
            checkout(app, req).await
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
            let query = req.uri().query().unwrap_or("");
            let (after, limit) =
                listing_query(query).map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, why))?;
            let page = app.db.call(move |s| s.order_page(after, limit)).await?;
            ok_json(StatusCode::OK, &page)
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route for {path}"),
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
async fn checkout(app: &App, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let Some(key) = idempotency_key(&req, true)? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "checkout needs an Idempotency-Key header",
        ));
    };
    let CheckoutRequest { cart_id } = read_json(req).await?;
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
            format!("no {what} with id {text:?}"),
        )),
    }
}

/// The `Idempotency-Key` header: absent is `None`; present must be 1..=200 visible
/// ASCII characters.
fn idempotency_key(req: &Request<Incoming>, required: bool) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
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

async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(too_large());
        }
        Err(error) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {error}"),
            ));
        }
    };
    serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON body: {error}"),
        )
    })
}
