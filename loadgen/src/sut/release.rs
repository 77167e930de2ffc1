//! A release of a server loadgen starts, as files the server reads: the `{start}`
//! symlink (what the master execs for new workers, and what the naive supervisor
//! starts) and the `{version_file}` (the version the server reports). A mode installs
//! its first release before the server starts; a deploy installs the next one before
//! its signal, so the server's own rollout picks up new code, a new version, or a
//! broken build. Each file is replaced atomically (written beside, then renamed), so
//! a worker starting at that moment sees the old release or the new one, never half.

use std::io;
use std::path::{Path, PathBuf};

use crate::plan::chaos::Release;

/// Where one mode's release lives (inside its temporary database folder).
#[derive(Debug, Clone)]
pub(crate) struct Files {
    pub start: PathBuf,
    pub version: PathBuf,
    bin_dir: PathBuf,
}

impl Files {
    pub(crate) fn new(dir: &Path, bin_dir: &Path) -> Files {
        Files {
            start: dir.join("start"),
            version: dir.join("version"),
            bin_dir: bin_dir.to_path_buf(),
        }
    }

    /// Installs what `release` names; says what changed, for the event log.
    pub(crate) fn install(&self, release: &Release) -> io::Result<String> {
        let mut done = Vec::new();
        if let Some(version) = &release.version {
            let tmp = self.version.with_extension("new");
            std::fs::write(&tmp, format!("{version}\n"))?;
            std::fs::rename(&tmp, &self.version)?;
            done.push(format!("version {version}"));
        }
        if let Some(target) = &release.start_link {
            let target = target.replace("{bin_dir}", &self.bin_dir.display().to_string());
            let tmp = self.start.with_extension("new");
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&target, &tmp)?;
            std::fs::rename(&tmp, &self.start)?;
            done.push(format!("start -> {target}"));
        }
        Ok(done.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_replaces_the_version_and_the_start_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = Files::new(dir.path(), Path::new("/opt/shop"));
        let first = Release {
            version: Some("v1".into()),
            start_link: Some("{bin_dir}/shop-server".into()),
        };
        assert_eq!(
            files.install(&first).expect("install"),
            "version v1, start -> /opt/shop/shop-server"
        );
        let next = Release {
            version: Some("v2".into()),
            start_link: Some("/bin/false".into()),
        };
        files.install(&next).expect("install again");
        assert_eq!(
            std::fs::read_to_string(&files.version).expect("version"),
            "v2\n"
        );
        assert_eq!(
            std::fs::read_link(&files.start).expect("link"),
            PathBuf::from("/bin/false")
        );
        assert_eq!(files.install(&Release::default()).expect("nothing"), "");
    }
}
