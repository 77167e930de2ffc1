//! The executable of one generation of workers, held open. The master opens what its
//! start path points at (the binary, a symlink to it, or a wrapper script) once per
//! generation, at start and at each rollout, and starts every worker of that
//! generation from the open file with `fexecve`: swapping the file or the symlink
//! afterwards changes nothing for that generation. That is what lets crash
//! replacements run the last known good code while the start path already points
//! at a new build. Owns no processes; [`crate::worker`] does the fork and exec.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExeError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path} is not an executable file")]
    NotExecutable { path: String },
    #[error("an argument contains a NUL byte: {arg:?}")]
    NulInArgument { arg: OsString },
}

/// An executable held open by its file descriptor.
#[derive(Debug)]
pub struct Executable {
    file: File,
    /// What the start path pointed at when it was opened (for log lines).
    resolved: PathBuf,
    /// `#!` scripts need their descriptor open across exec (the interpreter reads
    /// the script through `/dev/fd/N`); binaries do not.
    script: bool,
}

impl Executable {
    /// Opens what `path` points at now (following symlinks).
    pub fn open(path: &Path) -> Result<Executable, ExeError> {
        let display = || path.display().to_string();
        let file = File::open(path).map_err(|source| ExeError::Open {
            path: display(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| ExeError::Open {
            path: display(),
            source,
        })?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(ExeError::NotExecutable { path: display() });
        }
        let mut magic = [0u8; 2];
        let script = file.read_at(&mut magic, 0).is_ok_and(|n| n == 2) && magic == *b"#!";
        // The exact file this descriptor holds, whatever the path points at later.
        let resolved = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .unwrap_or_else(|_| path.to_owned());
        Ok(Executable {
            file,
            resolved,
            script,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub fn is_script(&self) -> bool {
        self.script
    }

    /// The file this generation runs, as it was named when opened.
    pub fn describe(&self) -> String {
        let kind = if self.script { "script " } else { "" };
        format!("{kind}{}", self.resolved.display())
    }
}

/// The argument vector and environment for `fexecve`, built before the fork (the
/// child may not allocate): owned strings plus the NULL-terminated pointer array.
pub struct ExecArgs {
    _strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, which the struct owns and never
// changes; they are only read (by the kernel, in the child).
unsafe impl Send for ExecArgs {}
// SAFETY: as above: nothing mutates through the pointers.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    pub fn new(argv0: &OsStr, args: &[OsString]) -> Result<ExecArgs, ExeError> {
        let strings = std::iter::once(argv0)
            .chain(args.iter().map(OsString::as_os_str))
            .map(|arg| {
                CString::new(arg.as_bytes()).map_err(|_| ExeError::NulInArgument {
                    arg: arg.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(ExecArgs {
            _strings: strings,
            pointers,
        })
    }

    pub fn argv(&self) -> *const *const libc::c_char {
        self.pointers.as_ptr()
    }
}

/// Resolves the path the master was started with into the start path of later
/// generations: a path with a slash as given; a bare name (found through `PATH`)
/// looked up in `PATH` the same way; `None` when that fails.
pub fn start_path(argv0: &OsStr) -> Option<PathBuf> {
    if argv0.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(argv0));
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(argv0))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_keeps_the_file_it_opened() {
        let dir = tempfile::tempdir().expect("temp dir");
        let v1 = dir.path().join("v1.sh");
        let v2 = dir.path().join("v2");
        std::fs::write(&v1, "#!/bin/sh\nexit 0\n").expect("write");
        std::fs::write(&v2, "\x7fELF").expect("write");
        for p in [&v1, &v2] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let link = dir.path().join("current");
        std::os::unix::fs::symlink(&v1, &link).expect("symlink");
        let first = Executable::open(&link).expect("open v1");
        std::fs::remove_file(&link).expect("unlink");
        std::os::unix::fs::symlink(&v2, &link).expect("symlink");
        let second = Executable::open(&link).expect("open v2");
        assert!(first.is_script() && !second.is_script());
        assert_eq!(first.describe(), format!("script {}", v1.display()));
        assert_eq!(second.describe(), v2.display().to_string());
    }

    #[test]
    fn a_file_that_cannot_run_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("notes.txt");
        std::fs::write(&plain, "hello").expect("write");
        let error = Executable::open(&plain).expect_err("not executable");
        assert_eq!(
            error.to_string(),
            format!("{} is not an executable file", plain.display())
        );
        let missing = dir.path().join("missing");
        let error = Executable::open(&missing).expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot open {}", missing.display())),
            "{error}"
        );
    }

    #[test]
    fn a_bare_name_is_found_in_path_and_a_path_is_kept() {
        assert_eq!(
            start_path(OsStr::new("./shop-server")),
            Some(PathBuf::from("./shop-server"))
        );
        let sh = start_path(OsStr::new("sh")).expect("sh is in PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(start_path(OsStr::new("no-such-program-here")), None);
    }
}
