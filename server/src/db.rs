//! Runs the [`Store`] on a dedicated thread so that SQLite work (including waiting
//! for another process's write lock) never stalls the event loop. The async side
//! sends a closure over a channel and awaits the answer on a oneshot. One thread and
//! one connection per serving process: SQLite serialises writers anyway, and a single
//! connection keeps prepared statements hot.

use std::path::Path;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::cli::Seed;
use crate::store::{Store, StoreError};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
}

impl Db {
    /// Opens the store on the calling thread (so that errors surface at start-up),
    /// then hands it to the database thread. `auto_checkpoint: false` leaves WAL
    /// checkpoints to someone else (the cluster master).
    pub fn open(path: &Path, seed: Seed, auto_checkpoint: bool) -> Result<Db, StoreError> {
        let mut store = Store::open(path, seed)?;
        if !auto_checkpoint {
            store.disable_auto_checkpoint()?;
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("db".to_owned())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job(&mut store);
                }
            })
            .map_err(|_| StoreError::Closed)?;
        Ok(Db { jobs })
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the database thread and blocks the calling thread until it is done:
    /// only for the rare job that must finish where nothing can await (a fault switch
    /// at drain).
    pub fn call_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = mpsc::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }
}
