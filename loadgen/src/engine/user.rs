//! The one user loop: a virtual user arrives at its scheduled instant, walks the
//! journey on its own keep-alive connection, thinks between steps, retries
//! idempotent requests that got no answer, and records each request once, with
//! latency measured from the instant the request was due (its first attempt's
//! schedule), so a stalled server shows in the numbers, and with how late loadgen
//! itself wrote it. When the run is cut off, a request in flight ends as `cut` (its
//! latency so far recorded as a lower bound) and the user stops: every request sent
//! ends in exactly one class. Every special case is data in `Journey` and
//! `UserConfig`; there is no second loop.

use crate::engine::answer::Answer;
use crate::engine::conn::{self, Conn, Endpoint, NoAnswer};
use crate::engine::recorder::{Finished, Recorder, UserEnd};
use crate::engine::render::UserBufs;
use crate::engine::request::Shape;
use crate::outcome::Class;
use crate::plan::journey::{self, Ctx, Journey, Record};
use crate::verdict::invariants::ConfirmedOrder;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

/// Everything users share, built once per mode.
pub struct UserConfig {
    pub journey: Journey,
    /// Each step's fixed request parts, rendered once.
    pub shapes: Vec<Shape>,
    pub endpoint: Endpoint,
    pub recorder: Arc<Recorder>,
    /// The mode's start instant: second 0 of every per-second bucket.
    pub t0: Instant,
    pub timeout: Duration,
    pub retry_count: u32,
    pub retry_backoff: Duration,
    /// Makes idempotency keys unique across runs against one database.
    pub nonce: u64,
    pub seed: u64,
    /// Turns true when the run is cut off: users stop where they are.
    pub cut: watch::Receiver<bool>,
}

/// Resolves once the run is cut off (never, if the engine went away without saying).
async fn cut_off(cut: &mut watch::Receiver<bool>) {
    if cut.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl UserConfig {
    fn second(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.t0)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32
    }
}

struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs user `user`, due to arrive at `due`.
pub async fn run(cfg: Arc<UserConfig>, user: u64, due: Instant) {
    let rec = &cfg.recorder;
    rec.active_users.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(&rec.active_users);
    let lateness = Instant::now().saturating_duration_since(due);
    rec.user_started(lateness.as_micros() as u64);

    let mut rng = SmallRng::seed_from_u64(cfg.seed ^ user.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut vars = vec![String::new(); cfg.journey.var_names.len()];
    let mut conn: Option<Conn> = None;
    let mut bufs = UserBufs::default();
    let cookies = cfg.journey.cookies;
    let mut next_due = due;
    let mut cut = cfg.cut.clone();
    // Far in the future until the first attempt arms it (see conn::attempt).
    let timer = sleep_until(due + Duration::from_secs(86_400 * 365));
    tokio::pin!(timer);
    let mut end = UserEnd::Completed;

    'journey: for (si, step) in cfg.journey.steps.iter().enumerate() {
        for rep in 0..step.repeat {
            let due = next_due;
            // A timer for a deadline already past still waits for the timer's next
            // tick (up to 1 ms): only sleep when there is something to wait for.
            if due > Instant::now() {
                tokio::select! {
                    biased;
                    _ = cut_off(&mut cut) => {
                        end = UserEnd::Cut;
                        break 'journey;
                    }
                    _ = sleep_until(due) => {}
                }
            }
            let written = Instant::now();
            rec.sent(
                cfg.second(due),
                si,
                written.saturating_duration_since(due).as_micros() as u64,
            );
            let shape = &cfg.shapes[si];
            // A captured value made the path or a header unsendable: loadgen cannot
            // make the request, and no retry will change that.
            let rendered = {
                let ctx = Ctx {
                    user,
                    nonce: cfg.nonce,
                    rep,
                    vars: &vars,
                };
                bufs.render(step, shape, si, &ctx, &mut rng, cookies)
            };
            let req = bufs.req(shape, step);

            let mut attempts = 0u32;
            let mut failures = 0u32;
            let result: Result<Answer, NoAnswer> = loop {
                attempts += 1;
                if let Err(e) = &rendered {
                    failures += 1;
                    break Err(NoAnswer {
                        class: Class::GeneratorError,
                        why: Some(format!("request for step `{}`: {}", step.name, e.0)),
                    });
                }
                let deadline = Instant::now() + cfg.timeout;
                let attempt = conn::attempt(
                    &cfg.endpoint,
                    user,
                    &mut conn,
                    &req,
                    deadline,
                    timer.as_mut(),
                );
                let outcome = tokio::select! {
                    biased;
                    _ = cut_off(&mut cut) => Err(NoAnswer::from(Class::Cut)),
                    r = attempt => r,
                };
                match outcome {
                    Ok(answer) => break Ok(answer),
                    Err(no) if no.class == Class::Cut => break Err(no),
                    Err(no) => {
                        failures += 1;
                        if let Some(why) = &no.why {
                            rec.generator_fault(why);
                        }
                        // A certificate loadgen does not trust stays untrusted.
                        if step.retryable
                            && attempts <= cfg.retry_count
                            && no.class != Class::TlsError
                        {
                            let factor = 1u32 << (attempts - 1).min(10);
                            tokio::select! {
                                biased;
                                _ = cut_off(&mut cut) => break Err(Class::Cut.into()),
                                _ = sleep(cfg.retry_backoff.saturating_mul(factor)) => continue,
                            }
                        }
                        break Err(no);
                    }
                }
            };
            let finished_at = Instant::now();
            // Every answer may set cookies (a 302 after a login does), as in a browser.
            if let (true, Ok(a)) = (cookies, &result) {
                bufs.keep_cookies(a);
            }
            let latency_us = finished_at.saturating_duration_since(due).as_micros() as u64;
            let (class, go_on, worker) = match &result {
                Ok(a) => {
                    let status = a.status;
                    let class = Class::of_status(status, step.is_ok_status(status));
                    if class != Class::Ok {
                        failures += 1;
                    }
                    let version: &[u8] = a.version().unwrap_or(b"unknown");
                    (
                        class,
                        step.continues_after(status),
                        Some((a.worker_pid, version)),
                    )
                }
                Err(no) => {
                    if let (Class::GeneratorError, Some(why)) = (no.class, &no.why) {
                        rec.generator_fault(why);
                    }
                    (no.class, false, None)
                }
            };
            if class == Class::Cut {
                // The attempt cut off in flight failed too, as far as anyone knows.
                failures += 1;
            }
            rec.finished(&Finished {
                second: cfg.second(finished_at),
                step: si,
                class,
                attempts,
                attempt_failures: failures,
                latency_us,
                at_us: finished_at.saturating_duration_since(cfg.t0).as_micros() as u64,
                worker,
            });
            if class == Class::Cut {
                end = UserEnd::Cut;
                break 'journey;
            }
            let mut captured = true;
            let mut recorded = false;
            // Only a 2xx carries what a step captures: an expected 409 (out of stock)
            // lets the user walk on, with nothing new to remember.
            if let (true, Ok(answer)) = (go_on, &result)
                && answer.is_success()
            {
                for (var, field) in &step.captures {
                    match journey::capture(answer.body(), field) {
                        Some(v) => vars[*var] = v,
                        None => captured = false,
                    }
                }
                if let (true, Some(record), Some((var, _))) =
                    (captured, step.records, step.captures.first())
                {
                    let id = vars[*var].clone();
                    match record {
                        Record::Order => rec.order(ConfirmedOrder {
                            id,
                            key: bufs.key().to_string(),
                            asked: bufs.body().to_string(),
                            told: String::from_utf8_lossy(answer.body()).into_owned(),
                        }),
                        Record::Cart => rec.cart(id),
                    }
                    recorded = true;
                }
            }
            // A checkout without a confirmation: refused on its only attempt (no order),
            // or an answer lost on the way (the server may hold an order nobody saw).
            if step.records == Some(Record::Order) && !recorded {
                let key = bufs.key().to_string();
                match &result {
                    Ok(a) if attempts == 1 && a.is_client_error() => rec.order_refused(key),
                    _ => rec.order_unanswered(key),
                }
            }
            if !go_on || !captured {
                end = UserEnd::Aborted;
                break 'journey;
            }
            let think = if step.think.max > step.think.min {
                let us = rng.random_range(
                    step.think.min.as_micros() as u64..=step.think.max.as_micros() as u64,
                );
                Duration::from_micros(us)
            } else {
                step.think.min
            };
            next_due = finished_at + think;
        }
    }
    rec.user_finished(end);
}
