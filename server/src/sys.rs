//! Thin operating-system plumbing shared by every mode: the open-file limit, the
//! listening socket (one bind, large backlog), the pidfile, and building the tokio
//! runtime with the configured number of event-loop threads.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::net::{TcpListener, TcpSocket};

/// Accept backlog requested; the kernel caps it at `net.core.somaxconn` (4096 here).
/// A spike of arrivals waits here instead of being refused.
pub const BACKLOG: u32 = 4096;

/// Raises the soft open-file limit to the hard one; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard)
}

/// Binds and listens (SO_REUSEADDR, so a restart does not wait for TIME_WAIT).
/// Needs a tokio runtime context.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Builds the runtime: one current-thread event loop by default, like one Node.js
/// process; `threads > 1` gives a multi-threaded scheduler.
pub fn runtime(threads: u16) -> io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(threads))
            .enable_all()
            .build()
    }
}

/// A pidfile holding this process's PID, removed on drop if it still holds it.
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    pub fn create(path: &Path) -> io::Result<Pidfile> {
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
        std::fs::rename(&tmp, path)?;
        Ok(Pidfile {
            path: path.to_owned(),
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
