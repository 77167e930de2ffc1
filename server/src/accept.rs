//! Accepting from the cluster's shared listening socket, fairly. Every worker
//! inherits the same socket; if each waited in epoll, all would wake for a new
//! connection and the one already running would take the whole burst (measured here:
//! 64 wrk connections, all on one worker). A thread blocked in accept(2) instead
//! waits in the kernel's FIFO queue of exclusive waiters, so connections go round
//! the workers in turn. The thread hands connections to the event loop over a
//! queue of [`HANDOFF_QUEUE`] slots, which the loop empties in one turn: with one
//! slot, each accept waited for a turn of a busy loop, and a reconnect storm (a
//! rollout closing ~19,000 keep-alive connections) filled the kernel's accept queue.
//! To stop (drain), it is interrupted with SIGUSR1, whose handler does nothing and
//! is installed without SA_RESTART so accept(2) returns EINTR; closing its copy of
//! the socket leaves the queue to the other workers. A failed accept is handled as
//! [`crate::accept_error`] says (running out of file descriptors backs off, warning
//! at most once a second). The thread takes a connection [`Permit`] before each
//! accept: at `--max-connections` it stops accepting, and the queue is left to the
//! other workers until one of its connections closes.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::accept_error::AcceptErrors;
use crate::conn_limit::{ConnLimit, Permit};

const WAKE_SIGNAL: libc::c_int = libc::SIGUSR1;
const BURST_PAUSE: Duration = Duration::from_micros(50);
/// How often the accept thread looks for a freed permit while at the cap.
const FULL_PAUSE: Duration = Duration::from_millis(1);
/// Connections accepted but not yet taken by the event loop. One slot made every
/// accept wait for a turn of a busy event loop (thousands of connection tasks), which
/// capped accepts far below a reconnect storm's rate and overflowed the kernel queue.
pub const HANDOFF_QUEUE: usize = 256;

/// An accepted connection with its place under the cap.
pub type Accepted = (TcpStream, Permit);

pub struct SharedAcceptor {
    streams: mpsc::Receiver<Accepted>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

extern "C" fn wake(_: libc::c_int) {}

fn install_wake_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler
    // is an empty extern "C" function, trivially async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0; // no SA_RESTART: a blocked accept(2) returns EINTR
        if libc::sigaction(WAKE_SIGNAL, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl SharedAcceptor {
    /// Starts the accept thread on `listener` (made blocking: the flag is shared by
    /// every process holding the socket, and all of them accept this way).
    pub fn start(
        listener: TcpListener,
        limit: Arc<ConnLimit>,
        role: &'static str,
    ) -> io::Result<SharedAcceptor> {
        install_wake_handler()?;
        listener.set_nonblocking(false)?;
        let (tx, streams) = mpsc::channel(HANDOFF_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            std::thread::Builder::new()
                .name("accept".to_owned())
                .spawn(move || {
                    accept_loop(&listener, &tx, &stop, &limit, role);
                    drop(listener);
                    done.store(true, Ordering::Release);
                })?
        };
        Ok(SharedAcceptor {
            streams,
            stop,
            done,
            thread: Some(thread),
        })
    }

    /// The next accepted connection; `None` if the accept thread is gone.
    pub async fn next(&mut self) -> Option<Accepted> {
        self.streams.recv().await
    }

    /// Another connection already handed over, without waiting.
    pub fn try_next(&mut self) -> Option<Accepted> {
        self.streams.try_recv().ok()
    }

    /// Stops accepting and closes this process's copy of the socket; returns the
    /// connections accepted but not yet taken, which the caller still serves.
    pub async fn stop(mut self) -> Vec<Accepted> {
        self.stop.store(true, Ordering::Release);
        let mut left = Vec::new();
        if let Some(thread) = self.thread.take() {
            let pthread = thread.as_pthread_t();
            // Repeat: the signal may land just before the thread blocks in accept;
            // and empty the channel, in case the thread waits to hand one over.
            while !self.done.load(Ordering::Acquire) {
                // SAFETY: the thread has not been joined, so its pthread_t is valid.
                unsafe { libc::pthread_kill(pthread, WAKE_SIGNAL) };
                while let Ok(stream) = self.streams.try_recv() {
                    left.push(stream);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = thread.join();
        }
        while let Ok(stream) = self.streams.try_recv() {
            left.push(stream);
        }
        left
    }
}

fn accept_loop(
    listener: &TcpListener,
    tx: &mpsc::Sender<Accepted>,
    stop: &AtomicBool,
    limit: &Arc<ConnLimit>,
    role: &'static str,
) {
    let mut errors = AcceptErrors::new(role);
    let fd = listener.as_raw_fd();
    while !stop.load(Ordering::Acquire) {
        let Some(permit) = limit.try_acquire() else {
            limit.warn_full(role);
            std::thread::sleep(FULL_PAUSE);
            continue;
        };
        // SAFETY: accept4 on our listening fd; the new fd is owned below.
        let conn = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if conn >= 0 {
            // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
            let stream = unsafe { TcpStream::from_raw_fd(conn) };
            if tx.blocking_send((stream, permit)).is_err() {
                return; // the event loop is gone
            }
            // Let the other workers' accept threads, woken for the same burst, take
            // the next ones.
            std::thread::sleep(BURST_PAUSE);
            continue;
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EAGAIN) {
            wait_readable(fd);
        } else if let Some(pause) = errors.on_error(&error) {
            std::thread::sleep(pause);
        }
    }
}

/// Someone made the shared socket non-blocking: wait for a connection instead of
/// spinning (woken early by the stop signal like accept).
fn wait_readable(fd: libc::c_int) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack, valid for the call.
    unsafe { libc::poll(&mut pfd, 1, 100) };
}
