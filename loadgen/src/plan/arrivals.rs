//! The arrival schedule: when each user starts, relative to the mode's start
//! instant, whatever the server does (open model). Owns turning the spike
//! shorthand or explicit stages into piecewise-linear rates and placing user `k`
//! where the cumulative arrivals reach `k + 0.5`. Deterministic, so shards in
//! other processes compute the same schedule and each takes its users `i mod n`.

use crate::plan::scenario::Arrival;
use std::time::Duration;

/// A piece of the rate curve: `rate` users/s at its start, `to` at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub duration: f64,
    pub rate: f64,
    pub to: f64,
}

/// The rate curve; after the last piece the last rate continues.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub pieces: Vec<Piece>,
}

impl Profile {
    pub fn from_scenario(a: &Arrival) -> Profile {
        let mut pieces = Vec::new();
        if let Some(peak) = a.peak_rate {
            let base = a.baseline_rate.unwrap_or(0.0);
            let baseline = a.baseline.map_or(0.0, |d| d.0.as_secs_f64());
            let ramp = a.ramp.map_or(0.0, |d| d.0.as_secs_f64());
            if baseline > 0.0 {
                pieces.push(Piece {
                    duration: baseline,
                    rate: base,
                    to: base,
                });
            }
            if ramp > 0.0 {
                pieces.push(Piece {
                    duration: ramp,
                    rate: base,
                    to: peak,
                });
            }
            pieces.push(Piece {
                duration: 0.0,
                rate: peak,
                to: peak,
            });
        } else {
            for s in &a.stages {
                pieces.push(Piece {
                    duration: s.duration.0.as_secs_f64(),
                    rate: s.rate,
                    to: s.to.unwrap_or(s.rate),
                });
            }
        }
        Profile { pieces }
    }

    /// Start offsets of users `0..users`, in order.
    pub fn schedule(&self, users: u64) -> Vec<Duration> {
        let mut out = Vec::with_capacity(users as usize);
        let mut k = 0u64;
        let mut start = 0.0f64; // seconds at the start of the current piece
        let mut base = 0.0f64; // cumulative arrivals at the start of the piece
        for p in &self.pieces {
            let total = p.duration * (p.rate + p.to) / 2.0;
            while k < users && (k as f64 + 0.5) <= base + total {
                let x = k as f64 + 0.5 - base;
                let a = if p.duration > 0.0 {
                    (p.to - p.rate) / (2.0 * p.duration)
                } else {
                    0.0
                };
                let denom = p.rate + (p.rate * p.rate + 4.0 * a * x).max(0.0).sqrt();
                let tau = if denom > 0.0 { 2.0 * x / denom } else { 0.0 };
                out.push(Duration::from_secs_f64(start + tau.clamp(0.0, p.duration)));
                k += 1;
            }
            start += p.duration;
            base += total;
        }
        let tail = self.pieces.last().map_or(0.0, |p| p.to);
        while k < users {
            let x = k as f64 + 0.5 - base;
            let tau = if tail > 0.0 { x / tail } else { 0.0 };
            out.push(Duration::from_secs_f64(start + tau));
            k += 1;
        }
        out
    }
}

/// Which users a process runs: `index mod count == shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn parse(text: &str) -> Result<Shard, String> {
        let (a, b) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}`: write i/n, e.g. 0/2"))?;
        let index: u32 = a
            .parse()
            .map_err(|_| format!("shard `{text}`: bad index"))?;
        let count: u32 = b
            .parse()
            .map_err(|_| format!("shard `{text}`: bad count"))?;
        if count == 0 || index >= count {
            return Err(format!("shard `{text}`: need 0 <= i < n"));
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, user: u64) -> bool {
        user % u64::from(self.count) == u64::from(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: &[Duration]) -> Vec<f64> {
        d.iter()
            .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
            .collect()
    }

    #[test]
    fn constant_rate_spaces_users_evenly() {
        let p = Profile {
            pieces: vec![Piece {
                duration: 0.0,
                rate: 10.0,
                to: 10.0,
            }],
        };
        assert_eq!(secs(&p.schedule(3)), vec![0.05, 0.15, 0.25]);
    }

    #[test]
    fn baseline_then_spike() {
        let p = Profile {
            pieces: vec![
                Piece {
                    duration: 10.0,
                    rate: 1.0,
                    to: 1.0,
                },
                Piece {
                    duration: 0.0,
                    rate: 100.0,
                    to: 100.0,
                },
            ],
        };
        let s = p.schedule(20);
        assert_eq!(s.len(), 20);
        assert!(s[9] < Duration::from_secs(10));
        assert!(s[10] >= Duration::from_secs(10) && s[19] < Duration::from_millis(10_110));
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn linear_ramp_matches_the_integral() {
        let p = Profile {
            pieces: vec![Piece {
                duration: 2.0,
                rate: 0.0,
                to: 100.0,
            }],
        };
        let s = p.schedule(100);
        // N(t) = 25 t^2, so user 49 (N = 49.5) arrives at sqrt(49.5/25) s.
        assert!((s[49].as_secs_f64() - (49.5f64 / 25.0).sqrt()).abs() < 1e-6);
        assert!(s[99] <= Duration::from_secs(2));
    }

    #[test]
    fn shards_partition_users() {
        let a = Shard::parse("1/3").expect("shard");
        assert!(a.owns(1) && a.owns(4) && !a.owns(3));
        assert!(Shard::parse("3/3").is_err());
    }
}
