//! The data that crosses from an engine to whoever merges it: one snapshot per
//! second (counters per step, a latency histogram, answers per worker, gauges) and a
//! final snapshot (per-step histograms, start lateness, user counts, own CPU and
//! RSS). The same types travel in memory and, as JSON lines with V2-serialized
//! histograms in hex, from `loadgen shard` processes to their parent.

use crate::outcome::Counts;
use crate::verdict::invariants::Ledger;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer as HistDe, Serializer as _, V2Serializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Microsecond latency histogram that serializes compactly.
#[derive(Debug, Clone)]
pub struct Hist(pub Histogram<u64>);

impl Hist {
    pub fn new() -> Hist {
        Self::with_digits(3)
    }

    /// Two significant digits: enough for lateness, a tenth of the memory.
    pub fn coarse() -> Hist {
        Self::with_digits(2)
    }

    fn with_digits(digits: u8) -> Hist {
        // 1 µs .. 60 s to start with; it grows when a value exceeds that, so a long
        // stall is recorded as it was, never clamped.
        let mut h =
            Histogram::new_with_bounds(1, 60_000_000, digits).expect("static bounds are valid");
        h.auto(true);
        Hist(h)
    }

    pub fn record(&mut self, micros: u64) {
        // Auto-resizing: fails only past u64 range, where clamping is all there is.
        if self.0.record(micros).is_err() {
            self.0.saturating_record(micros);
        }
    }

    pub fn merge(&mut self, other: &Hist) {
        // auto-resize is on, so adding never fails on range.
        let _ = self.0.add(&other.0);
    }

    /// Value at a quantile, in milliseconds (0 when empty).
    pub fn ms_at(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.value_at_quantile(q) as f64 / 1000.0
        }
    }

    pub fn max_ms(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.max() as f64 / 1000.0
        }
    }
}

impl Default for Hist {
    fn default() -> Self {
        Hist::new()
    }
}

impl Serialize for Hist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
        let mut hex = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        let digits = hex.as_bytes();
        if digits.len() % 2 != 0 {
            return Err(serde::de::Error::custom("histogram: odd hex length"));
        }
        let mut bytes = Vec::with_capacity(digits.len() / 2);
        for pair in digits.chunks(2) {
            let hi = (pair[0] as char).to_digit(16);
            let lo = (pair[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => bytes.push((h * 16 + l) as u8),
                _ => return Err(serde::de::Error::custom("histogram: bad hex")),
            }
        }
        let h: Histogram<u64> = HistDe::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        let mut out = Hist::new();
        let _ = out.0.add(&h);
        Ok(out)
    }
}

/// Answers from one server process running one version, in one second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCount {
    pub pid: u32,
    pub version: String,
    pub responses: u64,
}

/// Everything an engine measured in one second of the mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecondSnapshot {
    pub second: u32,
    /// Per journey step.
    pub steps: Vec<Counts>,
    /// Latency of the requests that finished in this second (all steps).
    pub hist: Hist,
    pub workers: Vec<WorkerCount>,
    pub active_users: u64,
    pub open_connections: u64,
    /// How late the requests first sent in this second were written, against the
    /// instant they were due.
    #[serde(default)]
    pub send_lateness: Hist,
    /// Of those, how many were later than the plan's bound (the generator's fault).
    #[serde(default)]
    pub generator_late: u64,
}

/// What an engine reports once, at its end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FinalSnapshot {
    pub step_hists: Vec<Hist>,
    /// Start lateness of users against their schedule, µs.
    pub lateness: Hist,
    /// Send lateness of every request against the instant it was due, µs.
    #[serde(default)]
    pub send_lateness: Hist,
    /// Connection setup times (TCP connect, and TLS handshake for HTTPS), µs.
    #[serde(default)]
    pub connect: Hist,
    /// Requests sent later than the plan's bound.
    #[serde(default)]
    pub generator_late: u64,
    pub users_planned: u64,
    pub users_started: u64,
    pub users_completed: u64,
    pub users_aborted: u64,
    /// Users still walking when the run was cut off.
    #[serde(default)]
    pub users_cut: u64,
    /// Users whose arrival came after the cut-off (or who could not be started).
    #[serde(default)]
    pub users_never_started: u64,
    /// User tasks that panicked or did not stop when told: their requests are lost to
    /// the counts, so the run cannot be trusted.
    #[serde(default)]
    pub users_lost: u64,
    /// The generator's own faults, distinct, as the OS or loadgen said them.
    #[serde(default)]
    pub generator_faults: Vec<String>,
    /// (server process, µs after the mode's start) of the first `ok` answer from each
    /// process: when a restarted or replacement process began serving, as clients see it.
    #[serde(default)]
    pub first_ok: Vec<(u32, u64)>,
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
    pub duration_s: f64,
    /// Orders and carts the server confirmed to this engine's users.
    #[serde(default)]
    pub ledger: Ledger,
}

/// One line on a worker's stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind")]
// One Final per engine against one Second a second: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Second(SecondSnapshot),
    Final(FinalSnapshot),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_json() {
        let mut h = Hist::new();
        for v in [1, 10, 1000, 2_000_000] {
            h.record(v);
        }
        let json = serde_json::to_string(&h).expect("ser");
        let back: Hist = serde_json::from_str(&json).expect("de");
        assert_eq!(back.0.len(), 4);
        assert_eq!(back.0.max(), h.0.max());
    }
}
