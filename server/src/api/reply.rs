//! Answers other than success: [`ApiError`] (status, message, `Allow`, whether the
//! connection must close), the mapping of store and body errors to statuses, and
//! the JSON helpers every answer is built with. A disk-full store answers 503 with
//! `Retry-After` (nothing was written; the same request later succeeds); 5xx answers
//! are logged at most once a second with a count, so an error storm cannot fill the
//! disk the log is on.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::body::BodyError;
use crate::conn_io::Linger;
use crate::log::Throttled;
use crate::store::StoreError;

pub type Reply = Response<Full<Bytes>>;

/// Seconds a client is asked to wait before retrying a 503.
pub const RETRY_AFTER_S: u32 = 1;

static SERVER_ERRORS: Throttled = Throttled::per_second("5xx answers");

/// An answer other than success, with the status it maps to.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub allow: Option<&'static str>,
    /// The connection closes after this answer (the request was not read to its
    /// end, or cannot be trusted): say so with `Connection: close`.
    pub close: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
            close: false,
        }
    }

    /// The same answer, closing the connection after it.
    pub fn closing(self) -> ApiError {
        ApiError {
            close: true,
            ..self
        }
    }

    pub fn into_reply(self) -> Reply {
        if self.status.is_server_error() {
            SERVER_ERRORS.line(
                "api",
                format_args!("{} {}", self.status.as_u16(), self.message),
            );
        }
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut reply = json(self.status, body);
        let headers = reply.headers_mut();
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            reply.extensions_mut().insert(Linger);
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
            StoreError::DiskFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Sqlite(_) | StoreError::Json(_) | StoreError::Closed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, error.to_string())
    }
}

/// Every body error ends the connection: the rest of the body is unread or broken.
impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        let status = match &error {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut { .. } | BodyError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.to_string()).closing()
    }
}

pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

pub fn ok_json(status: StatusCode, value: &impl serde::Serialize) -> Result<Reply, ApiError> {
    let body = serde_json::to_vec(value).map_err(StoreError::from)?;
    Ok(json(status, body))
}

pub fn replayed(mut reply: Reply, was_replayed: bool) -> Reply {
    if was_replayed {
        reply
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    reply
}
