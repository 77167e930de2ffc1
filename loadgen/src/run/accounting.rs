//! The run's own checks that its numbers can be trusted, made on every mode before
//! any threshold is judged: conservation (every request sent ended in exactly one
//! class; every planned user completed, aborted, was cut off or never started),
//! every generator source sent its final report, no user task was lost, loadgen made
//! every request it meant to (no `generator_error`), and loadgen, not the server, did
//! not set the pace (requests written late against their schedule stay within the
//! scenario's budget). Each failure is one sentence that names the limit and what to
//! do; any failure makes the run exit 3, since its figures describe the generator,
//! not the server.

use crate::engine::timeline::Timeline;
use crate::outcome::Class;
use crate::plan::LoadPlan;

/// What the mode's generators reported, beside the merged timeline.
pub(crate) struct Generated<'a> {
    pub data: &'a Timeline,
    /// Snapshot sources (runtime threads of every generator process) expected.
    pub sources: usize,
    /// Shard processes that exited with a failure.
    pub shards_failed: usize,
}

/// Every way the mode's numbers are not the server's alone; empty when they are.
pub(crate) fn check(g: &Generated<'_>, load: &LoadPlan) -> Vec<String> {
    let data = g.data;
    let fin = &data.fin;
    let mut failures = Vec::new();
    if g.shards_failed > 0 {
        failures.push(format!(
            "{} loadgen shard process(es) failed; their users' requests are missing",
            g.shards_failed
        ));
    }
    if data.finals_received < g.sources {
        failures.push(format!(
            "only {} of {} generator threads sent their final report (one panicked or died): \
             the counts are incomplete",
            data.finals_received, g.sources
        ));
    }
    if fin.users_lost > 0 {
        failures.push(format!(
            "{} user tasks were lost (panicked, could not start, or did not stop when cut \
             off){}",
            fin.users_lost,
            faults(&fin.generator_faults)
        ));
    }
    for (step, counts) in data.steps.iter().zip(&data.step_counts) {
        if counts.unaccounted() != 0 {
            failures.push(format!(
                "conservation broken in step `{step}`: {} requests sent, {} ended in a class",
                counts.sent,
                counts.completed()
            ));
        }
    }
    let ended = fin.users_completed + fin.users_aborted + fin.users_cut + fin.users_never_started;
    if data.finals_received >= g.sources && fin.users_lost == 0 && ended != fin.users_planned {
        failures.push(format!(
            "conservation broken: {} users planned, but {} completed + {} aborted + {} cut + \
             {} never started",
            fin.users_planned,
            fin.users_completed,
            fin.users_aborted,
            fin.users_cut,
            fin.users_never_started
        ));
    }
    let total = data.total();
    let generator_errors = total.class(Class::GeneratorError);
    if generator_errors > 0 {
        failures.push(format!(
            "loadgen could not make {generator_errors} requests itself{}: they are counted as \
             generator_error, not against the server. Raise loadgen's open-file limit \
             (`ulimit -n`), lower `load.users_per_process`, or add `load.source_addresses`",
            faults(&fin.generator_faults)
        ));
    }
    let sent = total.sent;
    if sent > 0 && fin.generator_late as f64 > load.late_budget * sent as f64 {
        failures.push(format!(
            "the generator set the pace: {} of {sent} requests ({:.1}%) were written more than \
             {} ms after they were due (budget {:.1}%; send lateness p99 {:.1} ms, max {:.1} \
             ms). Give loadgen more CPU (`--threads`, fewer users per process) or the machine \
             less to do",
            fin.generator_late,
            fin.generator_late as f64 * 100.0 / sent as f64,
            load.late_after.as_millis(),
            load.late_budget * 100.0,
            fin.send_lateness.ms_at(0.99),
            fin.send_lateness.max_ms(),
        ));
    }
    failures
}

/// `: first fault; second fault` or nothing.
fn faults(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" ({})", list.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::{FinalSnapshot, Message, SecondSnapshot};
    use crate::outcome::Counts;
    use std::time::Duration;

    fn load() -> LoadPlan {
        LoadPlan {
            users: 10,
            schedule: vec![Duration::ZERO; 10],
            timeout: Duration::from_secs(1),
            max_duration: Duration::from_secs(10),
            retry_count: 0,
            retry_backoff: Duration::ZERO,
            users_per_process: 10,
            source_addresses: 1,
            threads: 1,
            late_after: Duration::from_millis(50),
            late_budget: 0.01,
            segment: crate::segment::Segment::WHOLE,
        }
    }

    /// One source's timeline: `sent` requests of which `ended` finished ok, 10 users
    /// planned of which `completed` completed, and `fin` adjusted by the caller.
    fn timeline(
        sent: u64,
        ended: u64,
        completed: u64,
        fin: impl Fn(&mut FinalSnapshot),
    ) -> Timeline {
        let mut t = Timeline::new("m", vec!["a".into()], 1);
        let mut counts = Counts {
            sent,
            ..Counts::default()
        };
        counts.classes[Class::Ok as usize] = ended;
        t.push(Message::Second(SecondSnapshot {
            second: 0,
            steps: vec![counts],
            ..SecondSnapshot::default()
        }));
        let mut f = FinalSnapshot {
            step_hists: vec![Default::default()],
            users_planned: 10,
            users_started: 10,
            users_completed: completed,
            users_aborted: 10 - completed,
            ..FinalSnapshot::default()
        };
        fin(&mut f);
        t.push(Message::Final(f));
        t.flush();
        t
    }

    fn failures(t: &Timeline, sources: usize, shards_failed: usize) -> Vec<String> {
        let g = Generated {
            data: t,
            sources,
            shards_failed,
        };
        check(&g, &load())
    }

    #[test]
    fn a_sound_mode_passes() {
        assert_eq!(
            failures(&timeline(20, 20, 10, |_| {}), 1, 0),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_way_the_numbers_cannot_be_trusted_is_named() {
        let one = |t: Timeline, sources, shards| {
            let f = failures(&t, sources, shards);
            assert_eq!(f.len(), 1, "{f:?}");
            f[0].clone()
        };
        let lost_request = one(timeline(20, 19, 10, |_| {}), 1, 0);
        assert!(
            lost_request.contains("conservation broken in step `a`"),
            "{lost_request}"
        );
        let lost_user = one(timeline(20, 20, 9, |f| f.users_aborted -= 1), 1, 0);
        assert!(lost_user.contains("10 users planned"), "{lost_user}");
        let missing = one(timeline(20, 20, 10, |_| {}), 2, 0);
        assert!(
            missing.contains("only 1 of 2 generator threads"),
            "{missing}"
        );
        let shard = one(timeline(20, 20, 10, |_| {}), 1, 1);
        assert!(
            shard.contains("1 loadgen shard process(es) failed"),
            "{shard}"
        );
        let panicked = one(
            timeline(20, 20, 10, |f| {
                f.users_lost = 1;
                f.generator_faults = vec!["a user task panicked".into()];
            }),
            1,
            0,
        );
        assert!(panicked.contains("1 user tasks were lost"), "{panicked}");
        let late = one(timeline(20, 20, 10, |f| f.generator_late = 1), 1, 0);
        assert!(
            late.contains("the generator set the pace: 1 of 20"),
            "{late}"
        );
    }

    #[test]
    fn a_generator_error_is_loadgen_s_and_says_how_to_fix_it() {
        let mut t = timeline(20, 19, 10, |f| {
            f.generator_faults = vec!["socket(): Too many open files (os error 24)".into()];
        });
        t.step_counts[0].classes[Class::GeneratorError as usize] = 1;
        let f = failures(&t, 1, 0);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("could not make 1 requests itself")
                && f[0].contains("Too many open files")
                && f[0].contains("ulimit -n"),
            "{}",
            f[0]
        );
    }
}
