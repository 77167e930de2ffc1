//! One user's request buffers, reused for every request it makes: the rendered path,
//! body (JSON or raw from `body`, URL-encoded from `form`), idempotency key, the
//! step's header lines (templates rendered, then the cookie jar's `Cookie` line) and
//! the bytes on the wire. A rendered value that cannot be sent (a line break in a
//! header, a space in the path) is loadgen's own fault, reported as `BadRequest`.

use crate::engine::answer::Answer;
use crate::engine::conn::Req;
use crate::engine::cookies::Jar;
use crate::engine::request::{BadRequest, Shape};
use crate::plan::journey::{CompiledStep, Ctx};
use crate::plan::request_parts::form_encode;
use rand::RngExt;
use std::fmt::Write as _;

#[derive(Default)]
pub struct UserBufs {
    path: String,
    body: String,
    key: String,
    headers: String,
    wire: Vec<u8>,
    scratch: String,
    /// The path as the server sees it (base path and path), for cookie paths.
    full_path: String,
    jar: Jar,
}

impl UserBufs {
    /// Renders step `step`'s request (repetition `ctx.rep`, step index `si`) into
    /// the buffers; `cookies`: the jar's cookies go with it.
    pub fn render(
        &mut self,
        step: &CompiledStep,
        shape: &Shape,
        si: usize,
        ctx: &Ctx<'_>,
        rng: &mut impl RngExt,
        cookies: bool,
    ) -> Result<(), BadRequest> {
        self.path.clear();
        self.body.clear();
        self.key.clear();
        self.headers.clear();
        step.path.render(ctx, rng, &mut self.path);
        if let Some(t) = &step.body {
            t.render(ctx, rng, &mut self.body);
        }
        for (i, (field, value)) in step.form.iter().enumerate() {
            if i > 0 {
                self.body.push('&');
            }
            form_encode(field, &mut self.body);
            self.body.push('=');
            self.scratch.clear();
            value.render(ctx, rng, &mut self.scratch);
            form_encode(&self.scratch, &mut self.body);
        }
        if step.idempotency_key {
            let _ = write!(self.key, "{}-{}-{}-{}", ctx.nonce, ctx.user, si, ctx.rep);
        }
        for h in &step.headers {
            let start = self.headers.len();
            self.headers.push_str(&h.name);
            self.headers.push_str(": ");
            let value_at = self.headers.len();
            h.value.render(ctx, rng, &mut self.headers);
            if let Some(c) = self.headers[value_at..]
                .bytes()
                .find(|c| c.is_ascii_control() && *c != b'\t')
            {
                self.headers.truncate(start);
                return Err(BadRequest(format!(
                    "header `{}` would hold a control character (byte {c:#04x})",
                    h.name
                )));
            }
            self.headers.push_str("\r\n");
        }
        if cookies {
            self.full_path.clear();
            self.full_path.push_str(&shape.base_path);
            self.full_path.push_str(&self.path);
            self.jar.header(&self.full_path, &mut self.headers);
        }
        let key = step.idempotency_key.then_some(self.key.as_str());
        shape.render(
            &self.path,
            key,
            &self.headers,
            self.body.as_bytes(),
            &mut self.wire,
        )
    }

    /// The request last rendered.
    pub fn req<'a>(&'a self, shape: &'a Shape, step: &CompiledStep) -> Req<'a> {
        Req {
            shape,
            path: &self.path,
            key: step.idempotency_key.then_some(self.key.as_str()),
            headers: &self.headers,
            body: self.body.as_bytes(),
            wire: &self.wire,
        }
    }

    /// Keeps the cookies `answer` sets (to the request last rendered).
    pub fn keep_cookies(&mut self, answer: &Answer) {
        for c in answer.set_cookies() {
            self.jar.store(c, &self.full_path);
        }
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}
