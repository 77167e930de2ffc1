//! `loadgen merge OUT DIR...`: the run folders of N execution segments (`loadgen run
//! --shard I/N` on several hosts) become the run folder of the single run they
//! together are. The folders are checked first ([`segments`]: all N present, finished,
//! on time, of one run). Then each segment's snapshot stream is replayed, its seconds
//! moved by its recorded start offset (`SegmentRecord::second_shift`), into one
//! `Timeline`: the same merge local shard processes go through, so counters are summed,
//! histograms merged per second and per step, worker samples interleaved by second.
//! Events of every segment are interleaved by time; the chaos segment's process
//! samples (live workers) and server cost carry over. Conservation is checked on the
//! merged run against the whole plan (every planned user accounted for once), the
//! invariant checks run once against the target with every segment's confirmed
//! orders, and the thresholds and the report are evaluated on the merged folder by the
//! same code `loadgen run` uses.

pub mod segments;

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::engine::snapshot::Message;
use crate::engine::timeline::{ModeOutcome, Timeline};
use crate::history::baseline::BaselineError;
use crate::observe::events::EventSink;
use crate::observe::watcher::ServerCost;
use crate::plan::scenario::ScenarioError;
use crate::plan::{PlanOptions, RunPlan};
use crate::publish::{self, args::GateArgs};
use crate::report;
use crate::run::RunResult;
use crate::run::accounting::{self, Generated};
use crate::runfolder::{self, EventKind, EventRow, ModeRow, SecondRow, hlog};
use crate::segment::record::{self, SegmentRecord};
use crate::verdict::gate::{self, RunMetrics};
use crate::verdict::invariants;
use segments::{SegmentDir, SegmentsError};

/// What `loadgen merge` is asked to do.
pub struct MergeOptions {
    pub out: PathBuf,
    pub dirs: Vec<PathBuf>,
    /// Run the scenario's invariant checks against the target with the merged ledger.
    pub checks: bool,
    /// A segment whose second 0 came later than this after the agreed instant fails.
    pub late_limit: Duration,
    /// The regression gate's options (history, baselines, JUnit): the merged run is
    /// the run, so it is what the history records and baselines are read against.
    pub gate: GateArgs,
}

/// Why the merge could not produce a run folder.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Segments(#[from] SegmentsError),
    #[error("{name}: {why}")]
    Segment { name: String, why: String },
    #[error("the segments' scenario: {0}")]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("cannot write the merged run folder {}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Merges the segments and evaluates the merged run; the result maps to the same exit
/// codes as `loadgen run`.
pub async fn merge(opts: &MergeOptions) -> Result<RunResult, MergeError> {
    let segs = segments::read_all(&opts.dirs, opts.late_limit)?;
    let first = &segs[0];
    let mode = first.record.mode.clone();
    // The whole run's plan, compiled from the scenario every segment ran.
    let plan_opts = PlanOptions {
        modes: vec![mode.clone()],
        ..PlanOptions::default()
    };
    let scenario_path = first.dir.join("scenario.toml");
    let plan = RunPlan::from_source(
        &scenario_path.display().to_string(),
        &first.scenario,
        &plan_opts,
    )?;
    let sources: usize = segs.iter().map(|s| s.record.sources).sum();
    let mut data = Timeline::new(&mode, plan.journey.step_names(), sources);
    let mut seconds = Vec::new();
    let mut finals = Vec::new();
    for s in &segs {
        let messages =
            record::read_snapshots(&s.dir, &mode).map_err(|why| MergeError::Segment {
                name: s.name(),
                why,
            })?;
        for m in shifted(messages, &s.record) {
            match m {
                Message::Second(_) => seconds.push(m),
                Message::Final(_) => finals.push(m),
            }
        }
    }
    seconds.sort_by_key(|m| match m {
        Message::Second(s) => s.second,
        Message::Final(_) => u32::MAX,
    });
    let interval_log = |data: &Timeline| {
        record::interval_log(
            seconds.iter().chain(&finals),
            UNIX_EPOCH + Duration::from_millis(first.record.agreed_start_unix_ms),
            &data.steps,
            Duration::from_secs_f64(data.fin.duration_s),
        )
    };
    for m in seconds.iter().chain(&finals) {
        data.push(m.clone());
    }
    data.flush();
    let chaos_seg = segs.iter().find(|s| s.record.chaos);
    let mut sink = EventSink::default();
    let mut server_cost = None;
    let (mut cpu_s, mut peak_rss_kb) = (0.0, 0);
    for s in &segs {
        let shift = s.record.second_shift() as f64;
        let name = s.name();
        let read_err = |e: runfolder::ReadError| MergeError::Segment {
            name: name.clone(),
            why: e.to_string(),
        };
        for e in runfolder::read_rows::<EventRow>(&s.dir).map_err(read_err)? {
            match e.kind {
                // First answers are derived again from the merged data below.
                EventKind::Known(crate::observe::events::Kind::FirstOk) => {}
                EventKind::Known(kind) if e.mode == mode => sink.push(
                    Duration::from_secs_f64((e.t_s + shift).max(0.0)),
                    &mode,
                    kind,
                    e.pid.unwrap_or(0),
                    e.detail,
                ),
                _ => {}
            }
        }
        if chaos_seg.is_some_and(|c| c.record.index == s.record.index) {
            let rows = runfolder::read_rows::<SecondRow>(&s.dir).map_err(read_err)?;
            let live: Vec<(i64, u32)> = rows
                .iter()
                .filter(|r| r.mode == mode)
                .filter_map(|r| {
                    Some((
                        i64::from(r.second) + s.record.second_shift(),
                        r.live_workers?,
                    ))
                })
                .collect();
            if !live.is_empty() {
                let mut per_second = Vec::new();
                for (second, n) in live.into_iter().filter(|(s, _)| *s >= 0) {
                    let second = second as usize;
                    if per_second.len() <= second {
                        // A gap (no row that second) takes the next sample.
                        per_second.resize(second + 1, n);
                    }
                    per_second[second] = n;
                }
                data.set_live_workers(&per_second);
            }
        }
        // A segment's own process cost is added to its figures after the snapshots
        // (the parent's CPU, in-process generation): its modes.csv row has the total.
        let modes = runfolder::read_rows::<ModeRow>(&s.dir).map_err(read_err)?;
        let row = modes.iter().find(|m| m.mode == mode);
        cpu_s += row.map_or(0.0, |m| m.loadgen_cpu_s);
        peak_rss_kb += row.and_then(|m| m.loadgen_peak_rss_kb).unwrap_or(0);
        if chaos_seg.is_some_and(|c| c.record.index == s.record.index) {
            server_cost = row.and_then(|m| {
                Some(ServerCost {
                    cpu_seconds: m.server_cpu_s?,
                    peak_rss_kb: m.server_peak_rss_kb?,
                })
            });
        }
    }
    data.fin.cpu_s = cpu_s;
    data.fin.peak_rss_kb = peak_rss_kb;
    sink.events.sort_by_key(|e| e.t);
    sink.first_answers(&mode, &data.fin.first_ok);

    let mut failures = accounting::check(
        &Generated {
            data: &data,
            sources,
            shards_failed: 0,
        },
        &plan.load,
    );
    failures.extend(users_once(&segs, plan.load.users, data.fin.users_planned));
    let invariants = match (&plan.invariants, opts.checks) {
        (Some(paths), true) => {
            let target = chaos_seg.unwrap_or(first).record.target.clone();
            let base = format!("http://{target}");
            let checked =
                invariants::check(&base, paths, &data.fin.ledger, first.record.nonce).await;
            Some(checked.map_err(|e| e.to_string()))
        }
        _ => None,
    };
    let deploy_strategy = plan
        .modes
        .first()
        .map(|m| m.deploy_strategy.clone())
        .unwrap_or_default();
    let hlog = interval_log(&data);
    let outcome = ModeOutcome {
        measured: data,
        deploy_strategy,
        started_at: UNIX_EPOCH + Duration::from_millis(first.record.agreed_start_unix_ms),
        processes: segs.iter().map(|s| s.record.processes).sum(),
        server_cost,
        invariants,
    };
    write(opts, &segs, &plan, outcome, sink, hlog, failures)
}

/// Conservation across segments: each segment ran exactly the users it owns of the
/// scenario's `users`, and the merged finals planned them all (`merged_planned`).
fn users_once(segs: &[SegmentDir], users: u64, merged_planned: u64) -> Vec<String> {
    let mut failures = Vec::new();
    let planned: u64 = segs.iter().map(|s| s.record.users_planned).sum();
    if planned != users || merged_planned != users {
        failures.push(format!(
            "conservation across segments broken: the scenario plans {users} users, the \
             segments own {planned} and reported {merged_planned}"
        ));
    }
    for s in segs {
        let owned = crate::segment::Segment {
            index: s.record.index,
            count: s.record.count,
        }
        .users_of(users);
        if owned != s.record.users_planned {
            failures.push(format!(
                "{} ran {} users, but owns {owned} of the scenario's {users}",
                s.name(),
                s.record.users_planned,
            ));
        }
    }
    failures
}

/// Writes the merged folder and evaluates it: the run's own writers, gate and report.
fn write(
    opts: &MergeOptions,
    segs: &[SegmentDir],
    plan: &RunPlan,
    outcome: ModeOutcome,
    sink: EventSink,
    hlog: hlog::IntervalLog,
    harness_failures: Vec<String>,
) -> Result<RunResult, MergeError> {
    let publish = publish::args::options(plan, &opts.gate)?;
    let dir = opts.out.clone();
    let folder = |source| MergeError::Folder {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(folder)?;
    std::fs::write(dir.join("scenario.toml"), &segs[0].scenario).map_err(folder)?;
    let records: Vec<&SegmentRecord> = segs.iter().map(|s| &s.record).collect();
    let text =
        serde_json::to_string_pretty(&records).map_err(|e| folder(std::io::Error::other(e)))?;
    std::fs::write(dir.join("segments.json"), text + "\n").map_err(folder)?;
    let modes = vec![outcome];
    runfolder::write_run(&dir, &modes, &sink).map_err(folder)?;
    hlog::write_hlog(&dir, modes[0].mode(), &hlog).map_err(folder)?;
    let verdicts = if plan.thresholds.is_empty() {
        Vec::new()
    } else {
        let metrics = RunMetrics {
            modes: &modes,
            events: &sink,
            baseline: publish.baseline.as_ref(),
            baseline_required: plan.baseline.required,
        };
        let verdicts = gate::evaluate(&plan.thresholds, &metrics);
        runfolder::write_thresholds(&dir, &verdicts).map_err(folder)?;
        verdicts
    };
    let mut result = RunResult {
        dir,
        interrupted: false,
        modes,
        verdicts,
        aborted_by: None,
        report_error: None,
        harness_failures,
    };
    // summary.json, history (and its trend chart), JUnit: before the report reads the folder.
    publish::after_run(plan, &publish, &mut result);
    result.report_error = report::render(&result.dir).err();
    Ok(result)
}

/// A segment's messages with its seconds moved by its start offset, so that every
/// segment's second k is the run's second k on the reference clock; the first answers
/// move with them.
pub fn shifted(messages: Vec<Message>, record: &SegmentRecord) -> impl Iterator<Item = Message> {
    let shift = record.second_shift();
    messages.into_iter().map(move |m| match m {
        Message::Second(mut s) => {
            s.second = (i64::from(s.second) + shift).clamp(0, i64::from(u32::MAX)) as u32;
            Message::Second(s)
        }
        Message::Final(mut f) => {
            for (_, at) in &mut f.first_ok {
                *at = (*at as i64 + shift * 1_000_000).max(0) as u64;
            }
            Message::Final(f)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::SecondSnapshot;

    fn record(start_offset_ms: i64, clock_offset_ms: Option<i64>) -> SegmentRecord {
        SegmentRecord {
            index: 0,
            count: 2,
            mode: "cluster".into(),
            users_planned: 1,
            sources: 1,
            processes: 1,
            chaos: false,
            target: "127.0.0.1:1".into(),
            nonce: 1,
            agreed_start_unix_ms: 10_000,
            clock_at_start_unix_ms: 10_000,
            clock_offset_ms,
            start_offset_ms,
            finished: true,
        }
    }

    fn second(n: u32) -> Message {
        Message::Second(SecondSnapshot {
            second: n,
            ..SecondSnapshot::default()
        })
    }

    fn seconds_of(m: Vec<Message>, r: &SegmentRecord) -> Vec<u32> {
        shifted(m, r)
            .filter_map(|m| match m {
                Message::Second(s) => Some(s.second),
                Message::Final(_) => None,
            })
            .collect()
    }

    fn dir(index: u32, users_planned: u64) -> SegmentDir {
        SegmentDir {
            dir: PathBuf::from(format!("seg-{index}")),
            record: SegmentRecord {
                index,
                users_planned,
                ..record(0, None)
            },
            scenario: String::new(),
        }
    }

    #[test]
    fn every_planned_user_is_accounted_for_once_across_segments() {
        // 11 users over 2 segments: 6 and 5.
        assert!(users_once(&[dir(0, 6), dir(1, 5)], 11, 11).is_empty());
        // A segment that ran another share (an edited scenario, another plan).
        let f = users_once(&[dir(0, 6), dir(1, 6)], 11, 12);
        assert!(
            f[0].contains("plans 11 users, the segments own 12"),
            "{f:?}"
        );
        assert!(
            f[1].contains("segment 1/2 (seg-1) ran 6 users, but owns 5"),
            "{f:?}"
        );
        // The finals lost some users on the way.
        let f = users_once(&[dir(0, 6), dir(1, 5)], 11, 10);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("reported 10"), "{f:?}");
    }

    #[test]
    fn a_clock_off_by_200_ms_keeps_its_seconds() {
        // Released together: the clock offset is recorded, the start offset is small.
        let r = record(12, Some(200));
        assert_eq!(seconds_of(vec![second(0), second(1)], &r), [0, 1]);
    }

    #[test]
    fn a_segment_that_started_late_moves_by_whole_seconds() {
        let r = record(1_200, None);
        assert_eq!(seconds_of(vec![second(0), second(1)], &r), [1, 2]);
        let early = record(-600, None);
        assert_eq!(seconds_of(vec![second(0), second(3)], &early), [0, 2]);
    }
}
