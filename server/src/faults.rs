//! Test-only fault switches: bugs a real shop could ship, switched on with the hidden
//! `--fault NAME[=SHARE]` flag (repeatable, or comma-separated) so that loadgen's
//! invariant checks can be shown to catch each one (`loadgen/tests/faults.rs`). This
//! module owns the switches: their names, parsing, the process-wide set installed once
//! at start-up (workers get the master's flags), the deterministic choice of which
//! requests a share applies to, and the HTTP-level parts (losing an answer, dropping
//! carts at drain). The store's faulty code paths are `store::faults`. A shop started
//! without the flag runs none of this; one started with it says so in its log.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::db::Db;
use crate::store::Order;

/// A bug the shop can be told to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers 201 with the order, then rolls its transaction back.
    AckBeforeCommit,
    /// Loses the answer of a committed checkout (closes the connection), and on the
    /// retry ignores the idempotency key and the cart's checked-out mark: a second
    /// order. Its schema has no UNIQUE constraint on the key or the cart.
    DuplicateOnRetry,
    /// Skips the stock guard: stock may go below zero.
    Oversell,
    /// A draining process deletes the open carts it created.
    LoseCart,
    /// Books a second order nobody asked for (its own key, a cart of its own) beside
    /// the shopper's.
    PhantomOrder,
}

const NAMES: &[(&str, Fault)] = &[
    ("ack-before-commit", Fault::AckBeforeCommit),
    ("duplicate-on-retry", Fault::DuplicateOnRetry),
    ("oversell", Fault::Oversell),
    ("lose-cart", Fault::LoseCart),
    ("phantom-order", Fault::PhantomOrder),
];

impl Fault {
    fn index(self) -> usize {
        NAMES.iter().position(|(_, f)| *f == self).unwrap_or(0)
    }
}

/// One `--fault` value: a fault and the share of requests (or carts) it hits.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub fault: Fault,
    /// 0.0..=1.0; 1 when the flag gives none.
    pub share: f64,
}

/// Parses `NAME[=SHARE]` (clap's value parser for `--fault`).
pub fn parse_spec(text: &str) -> Result<FaultSpec, String> {
    let (name, share) = match text.split_once('=') {
        Some((name, share)) => (name.trim(), Some(share.trim())),
        None => (text.trim(), None),
    };
    let Some(fault) = NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f) else {
        let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown fault `{name}`; known: {}",
            known.join(", ")
        ));
    };
    let share = match share {
        None => 1.0,
        Some(s) => match s.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => return Err(format!("share `{s}` must be a number from 0 to 1")),
        },
    };
    Ok(FaultSpec { fault, share })
}

/// The faults a process runs with, each with its share in parts per million.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    ppm: [Option<u32>; 5],
}

impl Faults {
    pub fn new(specs: &[FaultSpec]) -> Faults {
        let mut faults = Faults::default();
        for spec in specs {
            faults.ppm[spec.fault.index()] = Some((spec.share * 1e6).round() as u32);
        }
        faults
    }

    pub fn is_empty(&self) -> bool {
        self.ppm.iter().all(Option::is_none)
    }

    /// Whether the fault is switched on at all.
    pub fn on(&self, fault: Fault) -> bool {
        self.ppm[fault.index()].is_some()
    }

    /// Whether the fault hits `subject` (an idempotency key, a cart id): the same
    /// subject always gets the same answer, in every process, so a share is
    /// reproducible and a retry meets the decision its first attempt met.
    pub fn picks(&self, fault: Fault, subject: &str) -> bool {
        self.ppm[fault.index()].is_some_and(|ppm| fnv1a(subject) % 1_000_000 < u64::from(ppm))
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<String> = NAMES
            .iter()
            .filter_map(|(name, fault)| {
                let ppm = self.ppm[fault.index()]?;
                Some(format!("{name}={}", f64::from(ppm) / 1e6))
            })
            .collect();
        write!(f, "{}", on.join(", "))
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

static ACTIVE: OnceLock<Faults> = OnceLock::new();

/// Installs this process's faults (once, from the flags, before anything serves) and
/// logs them when there are any.
pub fn install(specs: &[FaultSpec]) {
    let faults = Faults::new(specs);
    if !faults.is_empty() {
        crate::log_event!("fault", "TEST-ONLY faults switched on: {faults}");
    }
    let _ = ACTIVE.set(faults);
}

/// The faults of this process: none unless [`install`] was given some.
pub fn active() -> &'static Faults {
    static NONE: Faults = Faults { ppm: [None; 5] };
    ACTIVE.get().unwrap_or(&NONE)
}

/// Marks a reply that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
pub struct LoseAnswer;

/// The service's error for a reply marked [`LoseAnswer`]: hyper closes the connection
/// without a response, as when a process dies between its commit and its answer.
#[derive(Debug)]
pub struct AnswerLost;

impl fmt::Display for AnswerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault duplicate-on-retry: the answer was dropped")
    }
}

impl std::error::Error for AnswerLost {}

/// `duplicate-on-retry`: the first order of a picked key loses its answer, so the
/// shopper retries (and the retry, ignoring the key, orders again).
pub async fn loses_answer(db: &Db, order: &Order) -> bool {
    if !active().picks(Fault::DuplicateOnRetry, &order.idempotency_key) {
        return false;
    }
    let key = order.idempotency_key.clone();
    let first = db.call(move |s| s.first_order_for_key(&key)).await;
    matches!(first, Ok(Some(id)) if id == order.order_id)
}

/// A reply marked to be lost.
pub fn lost_answer() -> Response<Full<Bytes>> {
    let mut reply = Response::new(Full::new(Bytes::new()));
    reply.extensions_mut().insert(LoseAnswer);
    reply
}

/// `lose-cart`: when a serving process starts to drain, it deletes the open carts it
/// created (waits for the database thread: the process may exit right after).
pub fn on_drain(db: &Db) {
    if !active().on(Fault::LoseCart) {
        return;
    }
    match db.call_blocking(|s| s.drop_own_carts()) {
        Ok(n) => crate::log_event!("fault", "lose-cart: dropped {n} open carts on drain"),
        Err(e) => crate::log_event!("fault", "lose-cart: could not drop carts: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_shares() {
        let spec = parse_spec("oversell").expect("valid");
        assert_eq!((spec.fault, spec.share), (Fault::Oversell, 1.0));
        let spec = parse_spec("ack-before-commit=0.25").expect("valid");
        assert_eq!((spec.fault, spec.share), (Fault::AckBeforeCommit, 0.25));
        let error = parse_spec("lose-everything").expect_err("unknown");
        assert!(error.contains("known: ack-before-commit"), "{error}");
        assert!(parse_spec("oversell=2").is_err());
    }

    #[test]
    fn a_share_picks_about_that_share_and_always_the_same_subjects() {
        let faults = Faults::new(&[FaultSpec {
            fault: Fault::PhantomOrder,
            share: 0.2,
        }]);
        let picked = (0..10_000)
            .filter(|i| faults.picks(Fault::PhantomOrder, &format!("key-{i}")))
            .count();
        assert!((1_700..2_300).contains(&picked), "{picked} of 10,000");
        assert_eq!(
            faults.picks(Fault::PhantomOrder, "key-7"),
            faults.picks(Fault::PhantomOrder, "key-7")
        );
        assert!(!faults.picks(Fault::Oversell, "key-7"), "not switched on");
        assert_eq!(faults.to_string(), "phantom-order=0.2");
    }
}
