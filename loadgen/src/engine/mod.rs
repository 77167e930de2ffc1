//! Runs the users of one mode (or one shard of it) in this process: spawns each
//! user at its scheduled instant whatever the server does, drains the recorder once
//! a second into `SecondSnapshot`s, and ends with a `FinalSnapshot` when every user
//! is done, the mode's time cap is reached or a stop is requested. Snapshots go to
//! a channel; the engine neither prints nor writes files.

pub mod answer;
pub mod conn;
pub mod cookies;
pub mod h1;
pub mod hyper_client;
pub mod probe;
pub mod recorder;
pub mod render;
pub mod request;
pub mod shards;
pub mod snapshot;
pub mod timeline;
pub mod tls;
pub mod user;

use crate::engine::conn::{Client, Endpoint};
use crate::engine::recorder::Recorder;
use crate::engine::request::Shape;
use crate::engine::snapshot::{FinalSnapshot, Message};
use crate::limits;
use crate::plan::RunPlan;
use crate::plan::arrivals::Shard;
use crate::plan::journey::Journey;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use user::UserConfig;

/// Where the requests go.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header's value.
    pub host: String,
    /// The target URL's path (`/api/v1`, or empty), put before every request's path.
    pub base_path: String,
    /// An `https://` target.
    pub tls: bool,
}

/// What one engine runs: built once from the scenario, then only read.
pub struct EnginePlan {
    pub journey: Journey,
    /// (user index, start offset from t0) for this shard's users, in time order.
    pub users: Vec<(u64, Duration)>,
    pub users_planned: u64,
    pub addr: SocketAddr,
    pub host: String,
    pub base_path: String,
    pub tls: bool,
    pub source_addresses: u8,
    pub timeout: Duration,
    pub retry_count: u32,
    pub retry_backoff: Duration,
    pub max_duration: Duration,
    /// A request written later than this after it was due is the generator's lateness.
    pub late_after: Duration,
    pub nonce: u64,
    pub seed: u64,
}

impl EnginePlan {
    /// The engine of `shard` of the plan's users against `target`.
    pub fn new(plan: &RunPlan, shard: Shard, target: Target, nonce: u64) -> EnginePlan {
        // The execution segment's users, then this local shard's among them.
        let segment = plan.load.segment;
        let users: Vec<(u64, Duration)> = (0u64..)
            .zip(plan.load.schedule.iter().copied())
            .filter(|(i, _)| segment.owns(*i) && shard.owns(segment.local(*i)))
            .collect();
        let load = &plan.load;
        EnginePlan {
            journey: plan.journey.clone(),
            users_planned: users.len() as u64,
            users,
            addr: target.addr,
            host: target.host,
            base_path: target.base_path,
            tls: target.tls,
            source_addresses: load.source_addresses,
            timeout: load.timeout,
            retry_count: load.retry_count,
            retry_backoff: load.retry_backoff,
            max_duration: load.max_duration,
            late_after: load.late_after,
            nonce,
            seed: plan.seed,
        }
    }
}

impl EnginePlan {
    /// Deals the users round-robin into `parts` plans (one per runtime thread).
    pub fn split(self, parts: usize) -> Vec<EnginePlan> {
        let parts = parts.max(1);
        let mut buckets: Vec<Vec<(u64, Duration)>> = vec![Vec::new(); parts];
        for (i, u) in self.users.iter().enumerate() {
            buckets[i % parts].push(*u);
        }
        buckets
            .into_iter()
            .map(|users| EnginePlan {
                journey: self.journey.clone(),
                users_planned: users.len() as u64,
                users,
                host: self.host.clone(),
                base_path: self.base_path.clone(),
                ..self
            })
            .collect()
    }
}

/// Runs the plan on `threads` OS threads, each with its own current-thread runtime
/// and recorder (no state shared between threads on the hot path). Each thread is
/// one source of messages on `out`. Returns when every thread has finished.
pub async fn run_threads(
    plan: EnginePlan,
    threads: usize,
    t0: Instant,
    stop: watch::Receiver<bool>,
    out: mpsc::UnboundedSender<Message>,
) {
    let mut handles = Vec::new();
    for (i, part) in plan.split(threads).into_iter().enumerate() {
        let planned = part.users_planned;
        let (stop, thread_out) = (stop.clone(), out.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("loadgen-users-{i}"))
            .spawn(move || {
                limits::favour_this_thread();
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(part, t0, stop, thread_out)),
                    Err(e) => {
                        let _ = thread_out.send(Message::Final(unstarted(
                            planned,
                            format!("cannot start a runtime for a user thread: {e}"),
                        )));
                    }
                }
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                let _ = out.send(Message::Final(unstarted(
                    planned,
                    format!("cannot start a user thread: {e}"),
                )));
            }
        }
    }
    drop(out);
    let _ = tokio::task::spawn_blocking(move || {
        for h in handles {
            let _ = h.join();
        }
    })
    .await;
}

/// Runs the plan from `t0`; sends one `Message::Second` per second and a final
/// `Message::Final` on `out`. Returns when done or when `stop` turns true.
pub async fn run(
    plan: EnginePlan,
    t0: Instant,
    mut stop: watch::Receiver<bool>,
    out: mpsc::UnboundedSender<Message>,
) {
    let steps = plan.journey.steps.len();
    let recorder = Arc::new(Recorder::new(steps, plan.late_after));
    let (cut_tx, cut) = watch::channel(false);
    // A host name that cannot be a header value falls back to `localhost`.
    let host = if plan.host.bytes().all(|b| (0x21..0x7f).contains(&b)) && !plan.host.is_empty() {
        plan.host.clone()
    } else {
        "localhost".to_string()
    };
    let shapes = plan
        .journey
        .steps
        .iter()
        .map(|s| Shape::new(s, &host, &plan.base_path))
        .collect();
    let tls = match plan.tls {
        false => None,
        true => match tls::client_config(plan.journey.ca_file.as_deref())
            .and_then(|c| Ok((c, tls::server_name(&host)?)))
        {
            Ok(t) => Some(t),
            Err(why) => {
                let _ = out.send(Message::Final(unstarted(plan.users_planned, why)));
                return;
            }
        },
    };
    let cfg = Arc::new(UserConfig {
        shapes,
        endpoint: Endpoint {
            addr: plan.addr,
            host,
            client: Client::from_env(),
            tls,
            recorder: recorder.clone(),
            sources: limits::source_addresses(plan.addr.ip(), plan.source_addresses),
            open_connections: recorder.open_connections.clone(),
        },
        journey: plan.journey,
        recorder: recorder.clone(),
        t0,
        timeout: plan.timeout,
        retry_count: plan.retry_count,
        retry_backoff: plan.retry_backoff,
        nonce: plan.nonce,
        seed: plan.seed,
        cut: cut.clone(),
    });
    let users = plan.users;
    let spawner = tokio::spawn(spawn_users(cfg, users, t0, cut));
    let deadline = t0 + plan.max_duration;
    let mut next_second: u32 = 0;
    let mut spawner = Some(spawner);
    loop {
        let tick = t0 + Duration::from_secs(u64::from(next_second) + 1) + Duration::from_millis(20);
        tokio::select! {
            _ = sleep_until(tick) => {
                let upto = next_second + 1;
                emit(&recorder, next_second, upto, &out);
                next_second = upto;
            }
            done = async { spawner.as_mut().expect("spawner present").await }, if spawner.is_some() => {
                let _ = done;
                spawner = None;
                break;
            }
            _ = stopped(&mut stop) => break,
            _ = sleep_until(deadline) => break,
        }
    }
    if let Some(mut s) = spawner {
        // Cut off: no new user starts, and every user still walking stops at once,
        // recording a request it had in flight as `cut`, so every request sent is
        // counted. A user that does not stop in time is lost, and said to be.
        let _ = cut_tx.send(true);
        if tokio::time::timeout(STOP_GRACE, &mut s).await.is_err() {
            s.abort();
            let active = recorder
                .active_users
                .load(std::sync::atomic::Ordering::Relaxed);
            for _ in 0..active {
                recorder.user_lost();
            }
        }
    }
    let end = Instant::now();
    let last = end.saturating_duration_since(t0).as_secs() as u32 + 1;
    emit(&recorder, next_second, last.max(next_second + 1), &out);
    let mut fin: FinalSnapshot = recorder.finish(plan.users_planned);
    fin.duration_s = end.saturating_duration_since(t0).as_secs_f64();
    let _ = out.send(Message::Final(fin));
}

/// The final report of a part whose users could not be started at all: they are lost
/// to the generator's own failure, which fails the run.
fn unstarted(planned: u64, why: String) -> FinalSnapshot {
    FinalSnapshot {
        users_planned: planned,
        users_lost: planned,
        generator_faults: vec![why],
        ..FinalSnapshot::default()
    }
}

/// Resolves once `stop` turns true; never, if its sender is gone without saying so.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn emit(rec: &Recorder, from: u32, upto: u32, out: &mpsc::UnboundedSender<Message>) {
    for snap in rec.drain(from, upto) {
        let _ = out.send(Message::Second(snap));
    }
}

/// How long users may take to stop once the run is cut off.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts each user at its instant until the run is cut off (the rest never start),
/// then waits for every user to end. A user task that panicked is counted as lost.
async fn spawn_users(
    cfg: Arc<UserConfig>,
    users: Vec<(u64, Duration)>,
    t0: Instant,
    mut cut: watch::Receiver<bool>,
) {
    let mut set = JoinSet::new();
    let lost = |r: Result<(), tokio::task::JoinError>| {
        if r.is_err() {
            cfg.recorder.user_lost();
        }
    };
    'arrivals: for (user, offset) in users {
        let due = t0 + offset;
        loop {
            tokio::select! {
                biased;
                _ = cut.wait_for(|v| *v) => break 'arrivals,
                _ = sleep_until(due) => break,
                Some(r) = set.join_next(), if !set.is_empty() => lost(r),
            }
        }
        set.spawn(user::run(cfg.clone(), user, due));
    }
    while let Some(r) = set.join_next().await {
        lost(r);
    }
}
