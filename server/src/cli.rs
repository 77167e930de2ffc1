//! Command line of `shop-server`: the flags (clap; human durations such as `250ms`
//! and `30s` are parsed by `stampede_common::duration`), and the one place where the
//! flags become a [`Plan`] (what to run). Nothing else reads the raw flags; the
//! serving and supervising code only sees the plan.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use stampede_common::duration::parse_duration;

use crate::faults::FaultSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One process serves HTTP itself.
    Single,
    /// A master that never serves HTTP and N workers sharing one listening socket.
    Cluster,
    /// Internal: a worker started by the master, listening socket on fd 3.
    #[value(hide = true)]
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigtermAction {
    /// SIGTERM starts a rolling restart (the seed's convention).
    Restart,
    /// SIGTERM stops gracefully (for orchestrators such as Kubernetes).
    Shutdown,
}

/// Reference shop server: single process, or a master with forked workers sharing
/// one listening socket, with graceful drain, rolling restarts and crash recovery.
#[derive(Debug, Parser)]
#[command(name = "shop-server", version, args_override_self = true)]
pub struct Cli {
    /// Process model.
    #[arg(long, value_enum, default_value_t = Mode::Cluster)]
    pub mode: Mode,
    /// Address to listen on (loopback in every test and benchmark).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// SQLite database file (created and seeded when new).
    #[arg(long, default_value = "shop.db")]
    pub db: PathBuf,
    /// Number of products seeded into a new database (ids 1..=N).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub products: u32,
    /// Initial stock of each seeded product.
    #[arg(long, default_value_t = 1000)]
    pub stock: u32,
    /// Real CPU work per checkout (price computation), e.g. `1ms`.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub checkout_cpu: Duration,
    /// Simulated payment call per checkout (an I/O wait), e.g. `50ms`.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub checkout_io: Duration,
    /// How long a draining process waits for in-flight requests before closing them.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How long a client may take to send a complete request head; also the idle
    /// keep-alive timeout (hyper starts the same timer between requests).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Code version reported in `X-Server-Version` and `/healthz`.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub version_tag: String,
    /// A file whose first line is the version, read by every serving process when it
    /// starts (overrides --version-tag): a deploy that rewrites it before SIGTERM
    /// gives the new workers the new version.
    #[arg(long)]
    pub version_file: Option<PathBuf>,
    /// File to write the PID of the master (cluster) or of the process (single) to.
    #[arg(long)]
    pub pidfile: Option<PathBuf>,
    /// Event-loop threads per serving process (1 = one core, like one Node.js process).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Cluster: number of workers (default: available CPUs).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Cluster: how long a new worker may take to become ready (on top of
    /// `--boot-time`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub boot_timeout: Duration,
    /// Cluster: what SIGTERM to the master means.
    #[arg(long, value_enum, default_value_t = SigtermAction::Restart)]
    pub sigterm: SigtermAction,
    /// How long a request body may take to arrive, from its first awaited byte to its
    /// last (then 408 and the connection closes); also how long an answer may wait
    /// on a client that reads none of it (then the connection closes).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Minimum rate of a request body: by t seconds it must have sent this many
    /// bytes times (t - 1), or get 408 and the connection closed; 0: no minimum.
    #[arg(long, default_value_t = 500)]
    pub body_min_rate: u64,
    /// Open connections per serving process (single, or each worker); at the cap it
    /// stops accepting until one closes. Default: the open-file limit minus 64 (or
    /// minus a quarter of it, if less).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Work done before the process reports ready and accepts (loading, warming
    /// caches), in both modes; a cluster worker's `--boot-timeout` counts on top.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub boot_time: Duration,
    /// Cluster: how long every new worker of a rollout must stay ready before its
    /// old worker drains; a new worker that dies first rolls the deploy back.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Testing: exit 3 this long after reporting ready (a build that crashes soon
    /// after start).
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub crash_after_ready: Option<Duration>,
    /// Cluster, measurement: how the master checkpoints the WAL.
    #[arg(long, hide = true, value_enum, default_value_t = WalCheckpoint::Bounded)]
    pub wal_checkpoint: WalCheckpoint,
    /// One product's initial stock in a new database, as ID=UNITS (a sale's
    /// doorbuster, e.g. `1=300`); the others get --stock.
    #[arg(long, value_name = "ID=UNITS", value_parser = parse_product_stock)]
    pub product_stock: Option<ProductStock>,
    /// TEST ONLY: run with a bug (see README, "Fault switches"), as NAME[=SHARE].
    #[arg(long = "fault", hide = true, value_delimiter = ',', value_parser = crate::faults::parse_spec)]
    pub faults: Vec<FaultSpec>,
}

/// How the cluster master keeps the shared WAL from growing without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WalCheckpoint {
    /// PASSIVE, then past 4,096 frames a RESTART that gives up after 10 ms when a
    /// reader still holds the WAL (the default).
    Bounded,
    /// PASSIVE, then past 4,096 frames a RESTART that waits for readers up to the
    /// 30 s busy timeout, holding the write lock meanwhile (the former behaviour: a
    /// worker stopped inside a read stalled every worker's writes).
    Waiting,
    /// PASSIVE only: never restarts the WAL, which then grows under constant load.
    Passive,
}

/// Everything a serving process (single or worker) needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: PathBuf,
    pub seed: Seed,
    pub checkout_cpu: Duration,
    pub checkout_io: Duration,
    pub drain_timeout: Duration,
    pub header_timeout: Duration,
    pub version_tag: String,
    pub threads: u16,
    pub body_timeout: Duration,
    pub body_min_rate: u64,
    pub max_connections: Option<u64>,
    pub boot_time: Duration,
    pub crash_after_ready: Option<Duration>,
}

/// The catalog a new database is seeded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub products: u32,
    pub stock: u32,
    /// One product seeded with other stock than `stock`.
    pub product_stock: Option<ProductStock>,
}

/// `--product-stock ID=UNITS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductStock {
    pub id: u32,
    pub units: u32,
}

fn parse_product_stock(text: &str) -> Result<ProductStock, String> {
    let bad = || format!("`{text}`: expected ID=UNITS, e.g. 1=300");
    let (id, units) = text.split_once('=').ok_or_else(bad)?;
    Ok(ProductStock {
        id: id.trim().parse().map_err(|_| bad())?,
        units: units.trim().parse().map_err(|_| bad())?,
    })
}

/// Everything the cluster master needs.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub listen: SocketAddr,
    pub serve: ServeConfig,
    pub pidfile: Option<PathBuf>,
    pub workers: u16,
    pub boot_timeout: Duration,
    pub drain_timeout: Duration,
    pub sigterm: SigtermAction,
    pub settle: Duration,
    pub wal_checkpoint: WalCheckpoint,
}

/// What this invocation runs, decided once from the flags.
#[derive(Debug, Clone)]
pub enum Plan {
    Single {
        listen: SocketAddr,
        pidfile: Option<PathBuf>,
        serve: ServeConfig,
    },
    Cluster(ClusterConfig),
    Worker(ServeConfig),
}

impl Cli {
    /// Reads `--version-file` into the version tag, if one is given.
    pub fn resolve_version(&mut self) -> Result<(), String> {
        let Some(path) = &self.version_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --version-file {}: {e}", path.display()))?;
        match text.lines().next().map(str::trim) {
            Some(version) if !version.is_empty() => {
                self.version_tag = version.to_string();
                Ok(())
            }
            _ => Err(format!(
                "--version-file {}: the first line is empty",
                path.display()
            )),
        }
    }

    pub fn into_plan(self) -> Plan {
        let serve = ServeConfig {
            db: self.db,
            seed: Seed {
                products: self.products,
                stock: self.stock,
                product_stock: self.product_stock,
            },
            checkout_cpu: self.checkout_cpu,
            checkout_io: self.checkout_io,
            drain_timeout: self.drain_timeout,
            header_timeout: self.header_timeout,
            version_tag: self.version_tag,
            threads: self.threads,
            body_timeout: self.body_timeout,
            body_min_rate: self.body_min_rate,
            max_connections: self.max_connections,
            boot_time: self.boot_time,
            crash_after_ready: self.crash_after_ready,
        };
        match self.mode {
            Mode::Single => Plan::Single {
                listen: self.listen,
                pidfile: self.pidfile,
                serve,
            },
            Mode::Worker => Plan::Worker(serve),
            Mode::Cluster => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                let workers = self
                    .workers
                    .unwrap_or_else(|| u16::try_from(cpus).unwrap_or(u16::MAX));
                Plan::Cluster(ClusterConfig {
                    listen: self.listen,
                    pidfile: self.pidfile,
                    workers,
                    boot_timeout: self.boot_timeout,
                    drain_timeout: serve.drain_timeout,
                    sigterm: self.sigterm,
                    settle: self.settle,
                    wal_checkpoint: self.wal_checkpoint,
                    serve,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_use_the_shared_grammar() {
        let cli = Cli::try_parse_from(["shop-server", "--drain-timeout", "1.5s"]).expect("parses");
        assert_eq!(cli.drain_timeout, Duration::from_millis(1500));
        let error = Cli::try_parse_from(["shop-server", "--boot-timeout", "30"])
            .expect_err("a duration without a unit is refused")
            .to_string();
        assert!(
            error.contains("--boot-timeout") && error.contains("invalid duration `30`"),
            "{error}"
        );
    }

    #[test]
    fn hostile_client_limits_have_defaults_and_flags() {
        let plan = Cli::try_parse_from(["shop-server", "--mode", "single"])
            .expect("parses")
            .into_plan();
        let Plan::Single { serve, .. } = plan else {
            panic!("expected single mode, got {plan:?}");
        };
        assert_eq!(serve.body_timeout, Duration::from_secs(10));
        assert_eq!(serve.body_min_rate, 500);
        assert_eq!(serve.max_connections, None);
        let cli = Cli::try_parse_from([
            "shop-server",
            "--body-timeout",
            "3s",
            "--body-min-rate",
            "0",
            "--max-connections",
            "100",
        ])
        .expect("parses");
        assert_eq!(cli.body_timeout, Duration::from_secs(3));
        assert_eq!(cli.body_min_rate, 0);
        assert_eq!(cli.max_connections, Some(100));
        assert!(Cli::try_parse_from(["shop-server", "--max-connections", "0"]).is_err());
    }

    #[test]
    fn last_flag_wins_so_deploy_wrappers_can_override() {
        let cli = Cli::try_parse_from([
            "shop-server",
            "--version-tag",
            "v1",
            "--mode",
            "cluster",
            "--mode",
            "worker",
            "--version-tag",
            "v2",
        ])
        .expect("parses");
        assert_eq!(cli.mode, Mode::Worker);
        assert_eq!(cli.version_tag, "v2");
    }

    #[test]
    fn a_version_file_gives_the_version_when_the_process_starts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("version");
        std::fs::write(&file, "v7\nnotes\n").expect("write");
        let mut cli = Cli::try_parse_from([
            "shop-server",
            "--version-tag",
            "v1",
            "--version-file",
            file.to_str().expect("utf-8 path"),
        ])
        .expect("parses");
        cli.resolve_version().expect("readable");
        assert_eq!(cli.version_tag, "v7");
        std::fs::write(&file, "\n").expect("write");
        let err = cli.resolve_version().expect_err("empty first line");
        assert!(err.contains("first line is empty"), "{err}");
        std::fs::remove_file(&file).expect("remove");
        assert!(cli.resolve_version().is_err());
    }
}
