//! Error kinds shared by every command and the exit codes they map to.
//!
//! The exit codes are part of the CLI contract and are documented in README.md; never renumber
//! them. Library modules keep their own detailed error types (with file, field and offset) and
//! convert into [`Error`] at the command boundary, choosing the kind that tells the user what to
//! do next: fix the input, fix the invocation, or fix the system.

use std::fmt;
use std::path::{Path, PathBuf};

/// Documented process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 0: everything worked and every requested verdict was met.
    Success = 0,
    /// 1: the command ran, but a verdict the caller required was not met (`--require-gop`,
    /// `check` with failures, a group that is not viable).
    VerdictNotMet = 1,
    /// 2: bad command line (clap uses 2 for its own usage errors too).
    Usage = 2,
    /// 3: the input data is malformed (a ROM with no valid image, a corrupt EFI stream, ...).
    BadInput = 3,
    /// 4: the system refused: permission, I/O, a missing file or device, not root.
    System = 4,
    /// 5: a host change failed and was rolled back (bind/unbind).
    RolledBack = 5,
    /// 6: a host change failed and could not be fully rolled back: manual action needed.
    RollbackFailed = 6,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Short stable name used in JSON error documents.
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::Success => "success",
            ExitKind::VerdictNotMet => "verdict_not_met",
            ExitKind::Usage => "usage",
            ExitKind::BadInput => "bad_input",
            ExitKind::System => "system",
            ExitKind::RolledBack => "rolled_back",
            ExitKind::RollbackFailed => "rollback_failed",
        }
    }
}

/// A command-level error: a kind (which picks the exit code) and a one-line message that names
/// the file or device and, for data errors, the field and offset.
#[derive(Debug)]
pub struct Error {
    pub kind: ExitKind,
    pub message: String,
    /// The reader went away (`vfiotool list | head`): exit quietly, print nothing.
    pub broken_pipe: bool,
}

impl Error {
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            broken_pipe: false,
        }
    }

    /// A failure to write the command's own output.
    pub fn output(err: std::io::Error) -> Self {
        let mut e = Self::system(format!("writing output: {err}"));
        e.broken_pipe = err.kind() == std::io::ErrorKind::BrokenPipe;
        e
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Usage, message)
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ExitKind::BadInput, message)
    }

    pub fn system(message: impl Into<String>) -> Self {
        Self::new(ExitKind::System, message)
    }

    /// An I/O error about `path`, with a hint when the cause is a permission problem.
    pub fn io(path: &Path, action: &str, err: &std::io::Error) -> Self {
        let hint = match err.kind() {
            std::io::ErrorKind::PermissionDenied => " (run as root)",
            _ => "",
        };
        Self::system(format!("{}: {action}: {err}{hint}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error that remembers the path it was about.
#[derive(Debug, thiserror::Error)]
#[error("{}: {action}: {source}", path.display())]
pub struct PathError {
    pub path: PathBuf,
    pub action: &'static str,
    #[source]
    pub source: std::io::Error,
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::io(&e.path, e.action, &e.source)
    }
}
