//! Watches the server's process tree while a mode runs: which worker processes live,
//! when each one starts and exits (into the event log), how many are alive at any moment
//! (the `live_workers` column), and what the server costs: CPU seconds of every process
//! it ever ran, exited ones included, and the peak of their summed RSS. It samples `/proc`
//! from its own thread every few milliseconds, so a loaded runtime cannot delay it, and it
//! never signals anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::observe::events::{EventLog, Kind};
use crate::observe::procs::{self, ProcStat};

/// Which processes are the server's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerSet {
    /// The root is a master (shop-server cluster, Node.js cluster, PM2, gunicorn): its
    /// children serve; with `cmdline`, only the children whose command line contains
    /// it (PM2 runs every app under one daemon).
    Children { cmdline: Option<String> },
    /// The root serves itself (single mode).
    Itself,
}

impl WorkerSet {
    /// Every child of the master.
    pub const ALL_CHILDREN: WorkerSet = WorkerSet::Children { cmdline: None };

    /// The processes of `root` that are workers: the root itself, or its children
    /// that pass the filter (zombies included when there is no filter; a zombie's
    /// command line is empty).
    pub fn members(&self, root: i32) -> Vec<i32> {
        match self {
            WorkerSet::Itself => vec![root],
            WorkerSet::Children { cmdline: None } => procs::children(root).unwrap_or_default(),
            WorkerSet::Children {
                cmdline: Some(text),
            } => procs::children(root)
                .unwrap_or_default()
                .into_iter()
                .filter(|pid| procs::cmdline(*pid).is_some_and(|c| c.contains(text.as_str())))
                .collect(),
        }
    }

    fn is_master(&self) -> bool {
        matches!(self, WorkerSet::Children { .. })
    }
}

/// What the server cost while the watcher watched.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerCost {
    pub cpu_seconds: f64,
    pub peak_rss_kb: u64,
}

/// A running watcher; stop it to get the totals.
pub struct Watcher {
    shared: Arc<Shared>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

struct Shared {
    root: AtomicI32,
    live: AtomicU32,
    stop: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every process seen, keyed by (pid, start time) so a reused PID is a new process,
    /// with the last CPU tick count read from it.
    cpu: HashMap<(i32, u64), u64>,
    /// Workers alive at the last sample: pid -> start time.
    workers: HashMap<i32, u64>,
    peak_rss_kb: u64,
    /// Workers alive at the last sample of each second since the log's start.
    per_second: Vec<u32>,
    /// CPU ticks the server had already used when watching began (its boot).
    baseline_ticks: u64,
    /// The master's exit has been logged.
    root_exited: bool,
}

impl Watcher {
    /// Starts watching `root` (and, for [`WorkerSet::Children`], its children).
    pub fn start(root: i32, set: WorkerSet, events: EventLog, every: Duration) -> Watcher {
        let shared = Arc::new(Shared {
            root: AtomicI32::new(root),
            live: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        // Take the first sample before returning, so `live_workers` is right from t = 0;
        // what the server spent before it (booting) is not the load's cost.
        sample(&shared, &set, &events);
        {
            let mut state = lock(&shared.state);
            state.baseline_ticks = state.cpu.values().sum();
        }
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("proc-watcher".into())
            .spawn(move || {
                while !thread_shared.stop.load(Ordering::Relaxed) {
                    thread::sleep(every);
                    sample(&thread_shared, &set, &events);
                }
            })
            .ok();
        Watcher {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// Points the watcher at a new root process (single mode after a restart).
    pub fn set_root(&self, pid: i32) {
        self.shared.root.store(pid, Ordering::Relaxed);
    }

    /// Workers alive at the last sample.
    #[cfg(test)]
    pub fn live_workers(&self) -> u32 {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// Workers alive at the end of each second since the event log's start (the
    /// `live_workers` column).
    pub fn live_per_second(&self) -> Vec<u32> {
        lock(&self.shared.state).per_second.clone()
    }

    /// Stops sampling (for good) and returns what the server cost.
    pub fn stop(&self) -> ServerCost {
        self.shared.stop.store(true, Ordering::Relaxed);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        let state = lock(&self.shared.state);
        ServerCost {
            cpu_seconds: procs::ticks_to_seconds(
                state
                    .cpu
                    .values()
                    .sum::<u64>()
                    .saturating_sub(state.baseline_ticks),
            ),
            peak_rss_kb: state.peak_rss_kb,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it: every value
/// behind these locks stays consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One look at `/proc`: update CPU and RSS, diff the worker set, log starts and exits.
fn sample(shared: &Shared, set: &WorkerSet, events: &EventLog) {
    let root = shared.root.load(Ordering::Relaxed);
    let root_stat = procs::read_stat(root).ok().flatten();
    let candidates = set.members(root);
    let mut stats: Vec<ProcStat> = candidates
        .into_iter()
        .filter_map(|pid| procs::read_stat(pid).ok().flatten())
        .collect();

    let mut state = lock(&shared.state);
    // A master that goes away takes the target with it: say so once.
    let root_gone = root_stat.as_ref().is_none_or(|s| s.state == 'Z');
    if set.is_master() && root_gone && !state.root_exited {
        state.root_exited = true;
        let detail = root_stat
            .as_ref()
            .and_then(|s| s.exit_status)
            .map(procs::describe_wait_status)
            .unwrap_or_else(|| "gone".to_string());
        events.record(Kind::MasterExited, root, detail);
    }
    let mut rss_kb = 0;
    if set.is_master() {
        if let Some(root_stat) = &root_stat {
            state
                .cpu
                .insert((root_stat.pid, root_stat.start_ticks), root_stat.cpu_ticks);
            rss_kb += root_stat.rss_kb();
        }
    }
    for stat in &stats {
        state
            .cpu
            .insert((stat.pid, stat.start_ticks), stat.cpu_ticks);
        rss_kb += stat.rss_kb();
    }
    state.peak_rss_kb = state.peak_rss_kb.max(rss_kb);

    // A zombie has exited: it is no worker any more, and it still carries its exit status.
    let (alive, zombies): (Vec<ProcStat>, Vec<ProcStat>) =
        stats.drain(..).partition(|s| s.state != 'Z');
    let now: HashMap<i32, u64> = alive.iter().map(|s| (s.pid, s.start_ticks)).collect();

    for stat in &alive {
        if state.workers.get(&stat.pid) != Some(&stat.start_ticks) {
            events.record(Kind::WorkerStarted, stat.pid, format!("ppid {}", stat.ppid));
        }
    }
    let exited: Vec<(i32, u64)> = state
        .workers
        .iter()
        .filter(|(pid, start)| now.get(pid) != Some(start))
        .map(|(pid, start)| (*pid, *start))
        .collect();
    for (pid, _) in exited {
        let detail = match zombies.iter().find(|z| z.pid == pid) {
            Some(zombie) => zombie
                .exit_status
                .map(procs::describe_wait_status)
                .unwrap_or_else(|| "exited".to_string()),
            None => exit_detail(pid),
        };
        events.record(Kind::WorkerExited, pid, detail);
    }
    let live = now.len() as u32;
    shared.live.store(live, Ordering::Relaxed);
    state.workers = now;
    if let Some(since) = std::time::Instant::now().checked_duration_since(events.start()) {
        let second = since.as_secs() as usize;
        // A second with no sample of its own (a stalled machine) keeps the last value.
        let last = state.per_second.last().copied().unwrap_or(live);
        if state.per_second.len() <= second {
            state.per_second.resize(second + 1, last);
        }
        state.per_second[second] = live;
    }
}

/// Describes a worker that left the set without being seen as a zombie.
fn exit_detail(pid: i32) -> String {
    match procs::read_stat(pid) {
        Ok(Some(stat)) if stat.state == 'Z' => stat
            .exit_status
            .map(procs::describe_wait_status)
            .unwrap_or_else(|| "exited".to_string()),
        Ok(Some(stat)) => format!("left its parent, still running under ppid {}", stat.ppid),
        // Its parent reaped it between two samples: the status went with it.
        _ => crate::observe::events::STATUS_REAPED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    /// A shell that forks two sleeping children: a tiny "master".
    fn spawn_master() -> std::process::Child {
        Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sh")
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn sees_children_start_and_a_killed_child_exit() {
        let mut master = spawn_master();
        let root = master.id() as i32;
        wait_until("two children", || {
            procs::children(root).map(|k| k.len()).unwrap_or(0) == 2
        });
        let log = EventLog::new(Instant::now(), "test");
        let watcher = Watcher::start(
            root,
            WorkerSet::ALL_CHILDREN,
            log.clone(),
            Duration::from_millis(5),
        );
        assert_eq!(watcher.live_workers(), 2);

        let victim = procs::children(root).expect("children")[0];
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim),
            nix::sys::signal::Signal::SIGKILL,
        );
        wait_until("the kill to be seen", || watcher.live_workers() == 1);

        // Clean up the survivors before asserting, so a failure leaves nothing behind.
        let survivors = procs::children(root).unwrap_or_default();
        for pid in survivors {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = master.kill();
        let _ = master.wait();
        let cost = watcher.stop();

        let events = log.snapshot();
        let started = events
            .iter()
            .filter(|e| e.kind == Kind::WorkerStarted)
            .count();
        let exit = events
            .iter()
            .find(|e| e.kind == Kind::WorkerExited && e.pid as i32 == victim);
        assert_eq!(started, 2, "events: {events:?}");
        let exit = exit.unwrap_or_else(|| panic!("no exit event for {victim}: {events:?}"));
        assert!(
            exit.detail.contains("SIGKILL") || exit.detail.contains("reaped"),
            "exit detail: {}",
            exit.detail
        );
        assert!(
            cost.peak_rss_kb > 0,
            "peak RSS of three live processes: {cost:?}"
        );
    }

    #[test]
    fn counts_the_root_itself_in_single_mode() {
        let mut single = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let log = EventLog::new(Instant::now(), "test");
        let watcher = Watcher::start(
            single.id() as i32,
            WorkerSet::Itself,
            log,
            Duration::from_millis(5),
        );
        let live = watcher.live_workers();
        let _ = single.kill();
        let _ = single.wait();
        wait_until("the exit to be seen", || watcher.live_workers() == 0);
        watcher.stop();
        assert_eq!(live, 1);
    }
}
