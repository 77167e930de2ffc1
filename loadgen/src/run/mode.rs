//! One mode of a run, against a server that is ready: start the generators and the
//! watcher, merge the generators' snapshots while chaos runs its timetable (stopping
//! early on Ctrl-C or a breached abort-on-fail threshold), then the generators' and
//! the server's costs, and the invariant checks. Each job is one function; the server
//! itself is started and stopped by the caller.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::accounting::{self, Generated};
use super::generators::{Generators, Started};
use super::progress::Progress;
use super::{ModeEnd, RunError, RunOptions};
use crate::engine::snapshot::Message;
use crate::engine::timeline::{ModeOutcome, Timeline};
use crate::limits;
use crate::observe::chaos::{ChaosError, ChaosReport, ChaosRun, ServerControl};
use crate::observe::events::{EventLog, EventSink};
use crate::observe::watcher::Watcher;
use crate::plan::ModePlan;
use crate::plan::chaos::PlannedAction;
use crate::segment::session::{Agreed, Begin, Session};
use crate::sut::Server;
use crate::verdict::{gate, invariants};

/// How often the watcher looks at the server's processes.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// Runs `mode` against `server`; its events are added to `sink`.
pub(super) async fn run_mode(
    opts: &RunOptions,
    mode: &ModePlan,
    server: &mut Server,
    dir: &std::path::Path,
    nonce: u64,
    stop: watch::Receiver<bool>,
    sink: &mut EventSink,
) -> Result<ModeEnd, RunError> {
    let plan = &opts.plan;
    let generator_err = |message: String| RunError::Generator {
        mode: mode.name.clone(),
        message,
    };
    let (cpu0, _) = limits::self_usage();
    let (tx, rx) = mpsc::unbounded_channel::<Message>();
    // An execution segment starts at the agreed instant, with the run's shared nonce.
    let agreed = match &opts.segment {
        Some(seg) => Some(Agreed::wait(seg, plan).await.map_err(generator_err)?),
        None => None,
    };
    let nonce = agreed.as_ref().map_or(nonce, Agreed::nonce);
    let started = Generators::start(plan, server, nonce, agreed.as_ref().map(Agreed::t0), tx)
        .map_err(generator_err)?;
    let Started {
        generators,
        t0,
        t0_wall,
        sources,
        processes,
    } = started;
    let (session, rx) = match (&opts.segment, &agreed) {
        (Some(seg), Some(agreed)) => {
            let begin = Begin {
                seg,
                agreed,
                plan,
                dir,
                mode: &mode.name,
                target: server.addr.to_string(),
                sources,
                processes,
            };
            let (session, rx) = Session::begin(begin, rx).map_err(generator_err)?;
            (Some(session), rx)
        }
        _ => (None, rx),
    };
    let data = Timeline::new(&mode.name, plan.journey.step_names(), sources);
    let events = EventLog::new(t0.into_std(), &mode.name);
    let watcher = server
        .root_pid()
        .ok()
        .map(|pid| Watcher::start(pid, server.worker_set(), events.clone(), WATCH_EVERY));
    // Of a segmented run, only the segment told `--chaos` acts on the server.
    let timetable = match &opts.segment {
        Some(seg) if !seg.chaos => Vec::new(),
        _ => plan.timetable(&mode.name),
    };
    let progress = Progress::new(
        opts.quiet,
        &mode.name,
        plan.load.last_arrival(),
        plan.load.users,
    );
    let chaos = ChaosRun {
        timetable: &timetable,
        events: &events,
        watcher: watcher.as_ref(),
        seed: plan.seed,
        restart_delay: mode.restart_delay,
    };
    let mut load = Load {
        opts,
        data,
        generators,
        rx,
        stop,
        progress: &progress,
        timetable: &timetable,
        t0,
        sink,
        aborted_by: None,
        stopping: false,
    };
    let chaos_result = load.merge_while_chaos_runs(chaos, server).await;
    let Load {
        mut data,
        generators,
        aborted_by,
        stopping,
        ..
    } = load;
    data.flush();
    progress.finish();
    let shards_failed = generators.wait().await;
    if let Some(session) = session {
        session
            .finish(&data, !stopping)
            .await
            .map_err(generator_err)?;
    }
    let (cpu1, rss) = limits::self_usage();
    // The parent's own cost counts too: it merges and, in-process, generates.
    data.fin.cpu_s += cpu1 - cpu0;
    data.fin.peak_rss_kb += rss;
    let server_cost = watcher.as_ref().map(|watcher| {
        let cost = watcher.stop();
        data.set_live_workers(&watcher.live_per_second());
        cost
    });
    sink.extend(&events);
    sink.first_answers(&mode.name, &data.fin.first_ok);
    let chaos_report = chaos_result.map_err(|source| RunError::Chaos {
        mode: mode.name.clone(),
        source,
    })?;
    let generated = Generated {
        data: &data,
        sources,
        shards_failed,
    };
    let mut failures = accounting::check(&generated, &plan.load);
    failures.extend(
        chaos_report
            .unapplied
            .into_iter()
            .map(|what| format!("chaos could not be applied: {what}")),
    );
    let interrupted = stopping && aborted_by.is_none();
    let invariants = match (&plan.invariants, interrupted) {
        // A segment saw only its users' orders: `loadgen merge` checks the whole run.
        (Some(paths), false) if opts.segment.is_none() => {
            let base = format!("http://{}", server.host);
            let checked = invariants::check(&base, paths, &data.fin.ledger, nonce).await;
            Some(checked.map_err(|e| e.to_string()))
        }
        _ => None,
    };
    Ok(ModeEnd {
        outcome: ModeOutcome {
            measured: data,
            deploy_strategy: mode.deploy_strategy.clone(),
            started_at: t0_wall,
            processes,
            server_cost,
            invariants,
        },
        aborted_by,
        interrupted,
        failures,
    })
}

/// The load of one mode while it runs: what has been merged so far and how to stop it.
struct Load<'a> {
    opts: &'a RunOptions,
    data: Timeline,
    generators: Generators,
    rx: mpsc::UnboundedReceiver<Message>,
    stop: watch::Receiver<bool>,
    progress: &'a Progress,
    timetable: &'a [PlannedAction],
    t0: Instant,
    sink: &'a EventSink,
    aborted_by: Option<String>,
    stopping: bool,
}

impl Load<'_> {
    /// Merges every snapshot until the generators are done, while `chaos` acts on
    /// `server`; then chaos stops too, resuming whatever it paused and finishing a
    /// restart it began.
    async fn merge_while_chaos_runs(
        &mut self,
        chaos: ChaosRun<'_>,
        server: &mut Server,
    ) -> Result<ChaosReport, ChaosError> {
        let (chaos_stop_tx, mut chaos_stop_rx) = watch::channel(false);
        let chaos_stop = async move {
            let _ = chaos_stop_rx.wait_for(|v| *v).await;
        };
        let chaos_run = chaos.run(server, chaos_stop);
        tokio::pin!(chaos_run);
        let mut chaos_result = None;
        loop {
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(m) => if self.merge(m, chaos.events) { break },
                    None => break,
                },
                r = &mut chaos_run, if chaos_result.is_none() => chaos_result = Some(r),
                _ = crate::engine::stopped(&mut self.stop), if !self.stopping => {
                    self.progress.message("stopping: writing what was measured");
                    self.stop_generators();
                }
            }
        }
        let _ = chaos_stop_tx.send(true);
        match chaos_result {
            Some(r) => r,
            None => chaos_run.await,
        }
    }

    /// Merges one message; true when every generator has sent its final data.
    fn merge(&mut self, m: Message, events: &EventLog) -> bool {
        self.data.push(m);
        if let Some(live) = &self.opts.live {
            live.update(&self.data, || events.snapshot());
        }
        let next = self
            .timetable
            .iter()
            .find(|a| self.t0 + a.at > Instant::now());
        self.progress
            .update(&self.data, events.last().as_ref(), next);
        if self.data.all_finals_in() {
            return true;
        }
        if self.aborted_by.is_none() && !self.stopping {
            let thresholds = &self.opts.plan.thresholds;
            if let Some(t) = gate::breached_early(thresholds, &self.data, self.sink) {
                self.aborted_by = Some(t.text.clone());
                self.progress
                    .message(&format!("threshold breached, stopping: {}", t.text));
                self.stop_generators();
            }
        }
        false
    }

    fn stop_generators(&mut self) {
        self.stopping = true;
        self.generators.stop();
    }
}
