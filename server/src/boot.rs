//! What a serving process does around becoming ready, apart from serving: the
//! declared boot work of `--boot-time` (standing for loading code and warming
//! caches, paid before the process accepts a connection, in both modes) and the
//! hidden test hook `--crash-after-ready` (a build that dies soon after it started,
//! to exercise the master's settle time and rollback). Nothing here touches sockets.

use crate::cli::ServeConfig;
use crate::log_event;

/// Exit status of a process ended by `--crash-after-ready`.
pub const CRASH_EXIT_CODE: i32 = 3;

/// Spends `--boot-time` before the caller starts accepting. The wait is an await,
/// so signal handlers installed before it still run.
pub async fn warm_up(cfg: &ServeConfig, role: &str) {
    if cfg.boot_time.is_zero() {
        return;
    }
    log_event!(
        role,
        "booting: {} ms of start-up work before accepting (--boot-time)",
        cfg.boot_time.as_millis()
    );
    tokio::time::sleep(cfg.boot_time).await;
}

/// Arms `--crash-after-ready`: a thread that ends the process with
/// [`CRASH_EXIT_CODE`] once the delay has passed. A test hook only; hidden from
/// `--help`.
pub fn arm_crash(cfg: &ServeConfig, role: &'static str) {
    let Some(delay) = cfg.crash_after_ready else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("crash-after-ready".to_owned())
        .spawn(move || {
            std::thread::sleep(delay);
            log_event!(
                role,
                "--crash-after-ready {} ms: exiting {CRASH_EXIT_CODE}",
                delay.as_millis()
            );
            std::process::exit(CRASH_EXIT_CODE);
        });
    if let Err(error) = spawned {
        log_event!(role, "cannot arm --crash-after-ready: {error}");
    }
}
