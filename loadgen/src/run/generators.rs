//! The generators of one mode: the users run in this process (one engine over the
//! plan's runtime threads) or, when one process cannot hold their connections, in
//! `loadgen shard` processes. Either way they start at the same instant `t0`, send
//! their snapshots into one channel, stop on request and are waited for; the mode
//! loop does not care which it has.

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::engine::shards::{self, ShardSpec, Shards};
use crate::engine::snapshot::Message;
use crate::engine::{self, EnginePlan, Target};
use crate::plan::RunPlan;
use crate::plan::arrivals::Shard;
use crate::sut::Server;

/// Running generators of one mode.
pub(super) enum Generators {
    Local {
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
    Sharded(Shards),
}

/// Where the generators were started and when their second 0 is.
pub(super) struct Started {
    pub generators: Generators,
    pub t0: Instant,
    pub t0_wall: SystemTime,
    /// Sources of snapshots: every runtime thread of every process.
    pub sources: usize,
    pub processes: u32,
}

impl Generators {
    /// Starts the users of `plan` against `server`; their messages arrive on `tx`.
    pub(super) fn start(
        plan: &RunPlan,
        server: &Server,
        nonce: u64,
        start: Option<Instant>,
        tx: mpsc::UnboundedSender<Message>,
    ) -> Result<Started, String> {
        let processes = plan.load.processes();
        let threads = plan.load.threads;
        crate::limits::check_ports(
            plan.load.users,
            server.addr.ip(),
            plan.load.source_addresses,
        )?;
        // Shard processes need a moment to start and build their plans.
        let lead = if processes > 1 {
            Duration::from_millis(1500)
        } else {
            Duration::from_millis(50)
        };
        // An execution segment's second 0 is the agreed one (see `segment::start`).
        let now = Instant::now();
        let t0 = start.unwrap_or(now + lead);
        let t0_wall = SystemTime::now() + t0.saturating_duration_since(now);
        let generators = if processes > 1 {
            let spec = ShardSpec {
                scenario: &plan.path,
                count: processes,
                addr: server.addr,
                host: &server.host,
                base_path: &server.base_path,
                tls: server.tls,
                t0_unix_ns: shards::unix_ns(t0_wall),
                nonce,
                threads,
                segment: plan.load.segment,
            };
            Generators::Sharded(Shards::spawn(&spec, tx)?)
        } else {
            let target = Target {
                addr: server.addr,
                host: server.host.clone(),
                base_path: server.base_path.clone(),
                tls: server.tls,
            };
            let engine = EnginePlan::new(plan, Shard::WHOLE, target, nonce);
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(engine::run_threads(engine, threads, t0, stop_rx, tx));
            Generators::Local { stop, task }
        };
        Ok(Started {
            generators,
            t0,
            t0_wall,
            sources: processes as usize * threads,
            processes,
        })
    }

    /// Asks every generator to stop and send what it measured.
    pub(super) fn stop(&mut self) {
        match self {
            Generators::Local { stop, .. } => {
                let _ = stop.send(true);
            }
            Generators::Sharded(shards) => shards.stop(),
        }
    }

    /// Waits until every generator has ended; returns how many shard processes failed.
    pub(super) async fn wait(self) -> usize {
        match self {
            Generators::Local { task, .. } => usize::from(task.await.is_err()),
            Generators::Sharded(shards) => shards.wait().await,
        }
    }
}
