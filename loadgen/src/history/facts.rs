//! What a run is recorded with beyond its figures: a run id, the scenario's content
//! hash, the git commit and branch of the working directory (asked of `git` as a
//! process: no git, or not a repository, is `None`, never an error), and the machine
//! (cores, kernel).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::runfolder::summary_json::{GitRef, Machine};

/// FNV-1a 64 of `bytes`, as 16 hex digits: identifies a scenario's text.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A run id: the start stamp and six hex digits that differ between processes
/// started in the same second.
pub fn run_id(started: SystemTime) -> String {
    let nanos = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = (u64::from(nanos) ^ (u64::from(std::process::id()) << 7)) & 0xff_ffff;
    format!("{}-{mix:06x}", stampede_common::time::stamp(started))
}

/// The commit and branch of the repository `dir` is in; `None` outside one, or
/// without git.
pub fn git(dir: &Path) -> Option<GitRef> {
    let ask = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let commit = ask(&["rev-parse", "HEAD"])?;
    let branch = ask(&["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD");
    Some(GitRef { commit, branch })
}

/// This machine: its cores and kernel release.
pub fn machine() -> Machine {
    Machine {
        cores: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|k| k.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_repository_there_is_no_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(git(dir.path()), None);
        assert_eq!(git(&dir.path().join("missing")), None);
    }

    #[test]
    fn hashes_and_ids_tell_apart_what_differs() {
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b"").len(), 16);
        let id = run_id(SystemTime::UNIX_EPOCH);
        assert!(id.starts_with("19700101-000000-"), "{id}");
    }
}
