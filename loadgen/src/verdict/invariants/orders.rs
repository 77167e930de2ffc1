//! Orders, both ways round. Client to server: every order a shopper was confirmed
//! must still be there, field by field as the shopper was told (key, cart, total,
//! items) and in the listing; the rest are lost. Server to client: every order the
//! listing holds must be one a shopper was confirmed, or one whose checkout got no
//! answer; extra orders under one key are duplicates, orders under any other key are
//! phantoms. Pure functions over the ledger and what `fetch` read.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::fetch::{Listed, id_text};
use super::{Check, ConfirmedOrder, Ledger, keys};
use crate::report::fmt::count;

/// Confirmed orders against the server.
#[derive(Debug, Default)]
pub(super) struct Confirmed {
    pub checked: u64,
    /// The lookup answered 404.
    pub missing: u64,
    /// The lookup shows another key, cart, total, items... than the shopper was told.
    pub different: u64,
    /// Found by its id, but its key is not in the listing.
    pub unlisted: u64,
    pub first_problem: Option<String>,
    /// Units per product the confirmations promised (one per key); `None` when a
    /// confirmation does not list its items.
    pub promised: Option<HashMap<String, i64>>,
}

impl Confirmed {
    pub fn lost(&self) -> u64 {
        self.missing + self.different + self.unlisted
    }

    pub fn check(&self, listed: bool) -> Check {
        let mut compared = "every confirmed order looked up again: its idempotency key, every \
                            field of the confirmation and of the checkout request against the \
                            order the server shows"
            .to_string();
        if listed {
            compared.push_str("; its key in the order listing");
        }
        let mut actual = format!(
            "{} of {} confirmed orders",
            count(self.lost()),
            count(self.checked)
        );
        if let Some(problem) = &self.first_problem {
            actual.push_str(&format!(
                " ({} missing, {} different, {} not listed; first: {problem})",
                count(self.missing),
                count(self.different),
                count(self.unlisted)
            ));
        }
        Check {
            check: "lost_orders",
            compared,
            items: self.checked,
            expected: "0".into(),
            actual,
            holds: self.lost() == 0,
        }
    }
}

/// Compares every confirmed order with its lookup (`None`: 404) and the listing.
pub(super) fn confirmed(
    ledger: &Ledger,
    lookups: &HashMap<String, Option<Value>>,
    listing: Option<&[Listed]>,
) -> Confirmed {
    let listed: Option<HashSet<&str>> = listing.map(|l| l.iter().map(|o| o.key.as_str()).collect());
    let mut out = Confirmed {
        promised: Some(HashMap::new()),
        ..Confirmed::default()
    };
    let mut promised_keys = HashSet::new();
    for order in &ledger.orders {
        out.checked += 1;
        let told: Value = serde_json::from_str(&order.told).unwrap_or(Value::Null);
        if promised_keys.insert(order.key.as_str()) {
            promise(&mut out.promised, &told);
        }
        let problem = match lookups.get(&order.id).and_then(Option::as_ref) {
            None => {
                out.missing += 1;
                Some(format!("order {} (key {}) is gone", order.id, order.key))
            }
            Some(found) => match difference(order, &told, found) {
                Some(what) => {
                    out.different += 1;
                    Some(format!("order {} {what}", order.id))
                }
                None if listed
                    .as_ref()
                    .is_some_and(|l| !l.contains(order.key.as_str())) =>
                {
                    out.unlisted += 1;
                    Some(format!(
                        "order {} (key {}) is not in the listing",
                        order.id, order.key
                    ))
                }
                None => None,
            },
        };
        if out.first_problem.is_none() {
            out.first_problem = problem;
        }
    }
    out
}

/// The first field in which `found` differs from what the shopper sent and was told:
/// the key always, every field of the confirmation (absent counts as different), and
/// the fields of the request body that the order shows.
fn difference(order: &ConfirmedOrder, told: &Value, found: &Value) -> Option<String> {
    let show = |v: Option<&Value>| v.map_or("nothing".to_string(), Value::to_string);
    let key = found.get("idempotency_key");
    if key.and_then(Value::as_str) != Some(order.key.as_str()) {
        return Some(format!(
            "idempotency_key: sent {:?}, found {}",
            order.key,
            show(key)
        ));
    }
    if let Value::Object(fields) = told {
        for (name, value) in fields {
            if found.get(name) != Some(value) {
                return Some(format!(
                    "{name}: told {value}, found {}",
                    show(found.get(name))
                ));
            }
        }
    }
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&order.asked) {
        for (name, value) in &fields {
            if let Some(shown) = found.get(name)
                && shown != value
            {
                return Some(format!("{name}: asked {value}, found {shown}"));
            }
        }
    }
    None
}

/// Adds a confirmation's `items` (`product_id`, `quantity`) to the promised units;
/// a confirmation without them makes the whole tally unknown.
fn promise(promised: &mut Option<HashMap<String, i64>>, told: &Value) {
    let Some(tally) = promised.as_mut() else {
        return;
    };
    let Some(items) = told.get("items").and_then(Value::as_array) else {
        *promised = None;
        return;
    };
    for item in items {
        match (
            item.get("product_id"),
            item.get("quantity").and_then(Value::as_i64),
        ) {
            (Some(product), Some(quantity)) => {
                *tally.entry(id_text(product)).or_default() += quantity;
            }
            _ => {
                *promised = None;
                return;
            }
        }
    }
}

/// The server's orders against what shoppers were told.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Orders in the listing; `None` without one.
    pub listed: Option<u64>,
    pub duplicates: u64,
    pub phantoms: Option<u64>,
    /// Keys of the listing that shoppers were confirmed.
    pub matched: u64,
    /// Orders under a key whose checkout got no answer: legitimate, nobody was told.
    pub answer_lost: u64,
    /// Phantoms under a key the shopper was refused (told: no order).
    pub refused_but_ordered: u64,
    /// Orders under loadgen keys of other runs (another nonce), set aside: a server
    /// that keeps its orders between runs is not full of phantoms.
    pub earlier_runs: u64,
    pub first_phantom: Option<String>,
}

/// Groups the listing by key; `audit_duplicate_keys` is the audit view's own count,
/// `nonce` this run's (the first part of every key loadgen sends).
pub(super) fn held(
    ledger: &Ledger,
    listing: Option<&[Listed]>,
    audit_duplicate_keys: i64,
    nonce: u64,
) -> Held {
    let mut answered: HashMap<&str, HashSet<&str>> = HashMap::new();
    for o in &ledger.orders {
        answered
            .entry(o.key.as_str())
            .or_default()
            .insert(o.id.as_str());
    }
    let seen_by_shoppers: u64 = answered.values().map(|ids| ids.len() as u64 - 1).sum();
    let mut out = Held {
        duplicates: seen_by_shoppers.max(audit_duplicate_keys.max(0) as u64),
        ..Held::default()
    };
    let Some(listing) = listing else {
        return out;
    };
    let (unanswered, refused) = (keys(&ledger.unanswered), keys(&ledger.refused));
    let mut per_key: HashSet<&str> = HashSet::new();
    let (mut extra, mut phantoms) = (0, 0);
    for order in listing {
        let key = order.key.as_str();
        if !per_key.insert(key) {
            extra += 1;
        } else if other_run(key, nonce) {
            out.earlier_runs += 1;
        } else if answered.contains_key(key) {
            out.matched += 1;
        } else if unanswered.contains(key) {
            out.answer_lost += 1;
        } else {
            phantoms += 1;
            out.refused_but_ordered += u64::from(refused.contains(key));
            if out.first_phantom.is_none() {
                out.first_phantom = Some(format!("order {} under key {key}", order.order_id));
            }
        }
    }
    out.listed = Some(listing.len() as u64);
    out.duplicates = out.duplicates.max(extra);
    out.phantoms = Some(phantoms);
    out
}

/// A key loadgen made (`nonce-user-step-repetition`) in another run than `nonce`'s.
fn other_run(key: &str, nonce: u64) -> bool {
    let parts: Vec<&str> = key.split('-').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0] != nonce.to_string()
}

impl Held {
    pub fn duplicate_check(&self, listed: bool) -> Check {
        let (compared, items) = match self.listed {
            Some(n) if listed => (
                "the orders of the server's listing per idempotency key, and the order ids \
                 shoppers were answered per key"
                    .to_string(),
                n,
            ),
            _ => (
                "the order ids shoppers were answered per key, and the audit view's count of \
                 keys with more than one order (no order listing: phantom orders not checked)"
                    .to_string(),
                0,
            ),
        };
        Check {
            check: "duplicate_orders",
            compared,
            items,
            expected: "0".into(),
            actual: format!(
                "{} orders beyond the first for their key",
                count(self.duplicates)
            ),
            holds: self.duplicates == 0,
        }
    }

    /// `None` without a listing: nothing could be compared.
    pub fn phantom_check(&self, ledger: &Ledger) -> Option<Check> {
        let (phantoms, listed) = (self.phantoms?, self.listed?);
        let mut actual = format!(
            "{} of {} orders no shopper was confirmed ({} confirmed keys, {} whose answer was \
             lost; of the other checkouts {} were refused, {} lost an answer)",
            count(phantoms),
            count(listed),
            count(self.matched),
            count(self.answer_lost),
            count(ledger.refused.len() as u64),
            count(ledger.unanswered.len() as u64)
        );
        if self.earlier_runs > 0 {
            actual.push_str(&format!(
                "; {} orders of earlier runs set aside",
                count(self.earlier_runs)
            ));
        }
        if let Some(first) = &self.first_phantom {
            actual.push_str(&format!(
                "; first: {first}, {} under refused keys",
                count(self.refused_but_ordered)
            ));
        }
        Some(Check {
            check: "phantom_orders",
            compared: "every order of the server's listing against the keys shoppers sent: \
                       each must be an order a shopper was confirmed or one whose checkout got \
                       no answer"
                .into(),
            items: listed,
            expected: "0".into(),
            actual,
            holds: phantoms == 0,
        })
    }
}
