//! Execution segments: one run spread over several machines. `loadgen run --shard I/N`
//! runs segment I of N: the users whose index is I modulo N (fixed by the plan's seeded
//! schedule, so the N segments together are exactly the single run), from one agreed
//! wall-clock start instant ([`start`]), into a complete run folder of its own plus
//! what `loadgen merge` needs to rebuild the whole run ([`record`]: `segment.json` and
//! the raw per-second snapshots). Not to be confused with `engine::shards`: those are
//! the local child processes one loadgen (or one segment) splits its users over when
//! one process cannot hold their connections; a segment's users are split over them
//! the same way, inside the segment. Only the segment told `--chaos` acts on the
//! server; the others only load.

pub mod flags;
pub mod record;
pub mod session;
pub mod start;

use std::fmt;

use crate::plan::arrivals::Shard;

/// How `loadgen run --shard I/N` runs: which segment, how the start is agreed, and
/// whether this segment acts on the server.
#[derive(Debug, Clone)]
pub struct SegmentRun {
    pub segment: Segment,
    pub start: start::StartSpec,
    /// Run the plan's chaos rules (exactly one segment of a run should).
    pub chaos: bool,
}

/// Segment `index` of `count`: owns the users whose index is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl Segment {
    /// The whole run: every user.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// `I/N` or `I:N`, with 0 <= I < N: the local shards' syntax and its checks
    /// (`Shard::parse`), which also own users by index modulo count.
    pub fn parse(text: &str) -> Result<Segment, String> {
        let Shard { index, count } =
            Shard::parse(&text.replacen(':', "/", 1)).map_err(|e| format!("--shard: {e}"))?;
        Ok(Segment { index, count })
    }

    /// Whether user `user` (its index in the plan's schedule) is this segment's.
    pub fn owns(&self, user: u64) -> bool {
        Shard {
            index: self.index,
            count: self.count,
        }
        .owns(user)
    }

    /// The position of one of this segment's users among the segment's own users:
    /// what the local shard processes inside the segment split on.
    pub fn local(&self, user: u64) -> u64 {
        user / u64::from(self.count)
    }

    /// How many of `total` users this segment owns.
    pub fn users_of(&self, total: u64) -> u64 {
        let (n, i) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(total % n > i)
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }
}

/// Makes `plan` one segment's: one mode, against a running target, no thresholds;
/// only the chaos segment keeps the pidfile it acts through. The error says what to
/// change.
pub fn prepare(plan: &mut crate::plan::RunPlan, seg: &SegmentRun) -> Result<(), String> {
    use crate::plan::Launch;
    let name = |plan: &crate::plan::RunPlan| {
        plan.modes
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if plan.modes.len() != 1 {
        return Err(format!(
            "segment {}: a segmented run has one mode; choose it with --mode (the scenario has: {})",
            seg.segment,
            name(plan)
        ));
    }
    // Thresholds judge the whole run: `loadgen merge` evaluates them on the merged
    // folder (a segment's share would breach a threshold, or stop early, on its own).
    plan.thresholds.clear();
    for mode in &mut plan.modes {
        match &mut mode.launch {
            Launch::Command { .. } => {
                return Err(format!(
                    "segment {}: mode {} starts its own server, but the segments of a run load one running target: give the mode a `url` (and a `pidfile` for the --chaos segment)",
                    seg.segment, mode.name
                ));
            }
            Launch::External { pidfile, .. } if !seg.chaos => *pidfile = None,
            Launch::External { .. } => {}
        }
    }
    Ok(())
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings_and_refuses_the_rest() {
        assert_eq!(Segment::parse("1/3"), Ok(Segment { index: 1, count: 3 }));
        assert_eq!(Segment::parse("2:3"), Ok(Segment { index: 2, count: 3 }));
        for bad in ["3/3", "0/0", "x/2", "1", "-1/2"] {
            assert!(Segment::parse(bad).is_err(), "{bad} accepted");
        }
    }

    /// Every user belongs to exactly one segment and, inside it, to exactly one local
    /// shard process: segments x shards partition the run.
    #[test]
    fn segments_and_local_shards_partition_the_users() {
        let total = 1_001u64;
        let n = 3;
        let m = 2;
        let mut seen = vec![0u32; total as usize];
        let mut per_segment = 0;
        for i in 0..n {
            let seg = Segment { index: i, count: n };
            let owned = (0..total).filter(|u| seg.owns(*u)).count() as u64;
            assert_eq!(owned, seg.users_of(total));
            per_segment += owned;
            for j in 0..m {
                let shard = Shard { index: j, count: m };
                for u in (0..total).filter(|u| seg.owns(*u) && shard.owns(seg.local(*u))) {
                    seen[u as usize] += 1;
                }
            }
        }
        assert_eq!(per_segment, total);
        assert!(seen.iter().all(|c| *c == 1), "a user owned twice or never");
    }
}
