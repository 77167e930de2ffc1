//! `loadgen run`'s command-line flags for one execution segment (`--shard I/N`,
//! `--start-at`, `--start-file`, `--chaos`) and turning them into the [`SegmentRun`]
//! to carry out; a combination that makes no sense is a usage error, before any load.

use super::start::{StartSpec, parse_instant};
use super::{Segment, SegmentRun};
use std::path::PathBuf;
use std::time::Duration;

/// `loadgen run`'s options for one execution segment of a run spread over machines.
#[derive(Debug, Clone, clap::Args)]
pub struct SegmentFlags {
    /// Run only execution segment I of N of the users (I/N or I:N): the users whose
    /// index is I modulo N. The N segments together are the whole run.
    #[arg(long = "shard", value_name = "I/N")]
    pub segment: Option<String>,
    /// The agreed start instant of every segment: RFC 3339 or Unix milliseconds.
    #[arg(long, value_name = "RFC3339|UNIX_MS", conflicts_with = "start_file")]
    pub start_at: Option<String>,
    /// Wait until this file holds the start instant (a release: a starter writes it
    /// once every segment is up).
    #[arg(long, value_name = "PATH")]
    pub start_file: Option<PathBuf>,
    /// How long to wait for the start file.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub start_timeout: u64,
    /// This segment acts on the server: the scenario's chaos rules (one segment only).
    #[arg(long)]
    pub chaos: bool,
}

impl SegmentFlags {
    /// The segment to run, if any; the error is a usage error.
    pub fn segment_run(&self) -> Result<Option<SegmentRun>, String> {
        let Some(text) = &self.segment else {
            if self.start_at.is_some() || self.start_file.is_some() || self.chaos {
                return Err("--start-at, --start-file and --chaos go with --shard I/N".into());
            }
            return Ok(None);
        };
        let segment = Segment::parse(text)?;
        let start = match (&self.start_at, &self.start_file) {
            (Some(at), _) => {
                StartSpec::At(parse_instant(at).map_err(|e| format!("--start-at {e}"))?)
            }
            (None, Some(path)) => StartSpec::File {
                path: path.clone(),
                timeout: Duration::from_secs(self.start_timeout),
            },
            (None, None) => {
                return Err(format!(
                    "--shard {segment}: the segments need one start: give --start-at or --start-file"
                ));
            }
        };
        Ok(Some(SegmentRun {
            segment,
            start,
            chaos: self.chaos,
        }))
    }
}
