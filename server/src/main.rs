//! `shop-server`: parse the flags, turn them into a plan, run it, map the result to an
//! exit code (0 clean, 1 drain timed out, 2 could not start). Module map: `cli`
//! (flags, plan), `store` (SQLite), `db` (store on its own thread), `api` (routes),
//! `body` (reading a request body within its limits), `pricing` (checkout CPU
//! work), `http` (serving and drain), `conn_io` (the socket under hyper: the right
//! status for refused heads, lingering close), `head_scan`, `conn_limit` (the
//! connection cap), `accept` (fair accept from the cluster's shared socket),
//! `accept_error` (back-off and warnings when accept fails), `serve` (a serving
//! process: single or worker), `boot` (boot work before ready), `master` (cluster
//! process layer), `checkpoint` (the master's WAL checkpointer), `exe` (the
//! executable of a generation, held open), `supervisor` and `rollout` (the master's
//! lifecycle as a plain state machine), `worker` (starting and watching one worker
//! process), `signals`, `sys` (rlimit, socket, pidfile, runtime), `log`, `faults` (test-only bugs,
//! off unless the hidden `--fault` flag switches one on).

mod accept;
mod accept_error;
mod api;
mod body;
mod boot;
mod checkpoint;
mod cli;
mod conn_io;
mod conn_limit;
mod db;
mod exe;
mod faults;
mod head_scan;
mod http;
mod log;
mod master;
mod pricing;
mod rollout;
mod serve;
mod signals;
mod store;
mod supervisor;
mod sys;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Plan};

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    faults::install(&cli.faults);
    if let Err(error) = cli.resolve_version() {
        log_event!("shop-server", "cannot run: {error}");
        return ExitCode::from(2);
    }
    let plan = cli.into_plan();
    let (role, result) = match plan {
        Plan::Single {
            listen,
            pidfile,
            serve,
        } => ("single", serve::run_single(listen, pidfile, serve)),
        Plan::Worker(serve) => ("worker", serve::run_worker(serve)),
        Plan::Cluster(cluster) => ("master", master::run_cluster(cluster)),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            log_event!(role, "cannot run: {error:#}");
            ExitCode::from(2)
        }
    }
}
