//! One sysfs write done by a child process that can be abandoned.
//!
//! A write to a driver's `unbind` runs the driver's remove() in the writing task, and the kernel
//! holds the device lock until remove() returns, which for a busy GPU driver can be never. A
//! thread blocked in such a write keeps the whole process alive (even SIGKILL does not reap it
//! until the write returns), so the write is done by a forked child instead: the parent waits
//! for it with a deadline and, past it, leaves the child behind and goes on (or exits). The
//! child inherits the open group lock files, so the IOMMU group stays locked against other
//! vfiotool runs until the write has really finished.
//!
//! `std::process::Command` cannot do this: its `spawn` waits until the child execs or exits.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::libc;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// A write in flight in a child process.
#[derive(Debug)]
pub struct Writer {
    pid: Pid,
}

impl Writer {
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// `None` while the write is still running; then its result (once: the child is reaped).
    pub fn try_wait(&self) -> Option<io::Result<()>> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(WaitStatus::Exited(_, 0)) => Some(Ok(())),
            Ok(WaitStatus::Exited(_, errno)) => Some(Err(io::Error::from_raw_os_error(errno))),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(Err(io::Error::other(format!(
                "the writing process was killed by {sig}"
            )))),
            Ok(_) => None,
            Err(e) => Some(Err(io::Error::from(e))),
        }
    }
}

/// Start a child process that writes `value` to `path` as `fs::write` does (create, truncate:
/// both are no-ops on a sysfs attribute) and exits with 0, or with the errno of the failed
/// open or write. Its stdin, stdout and stderr are /dev/null (a pipe reading vfiotool's output
/// must not wait for an abandoned writer), and it has its own process group (a Ctrl-C on the
/// terminal goes to vfiotool, which rolls back, not to the writer).
pub fn spawn(path: &Path, value: &str) -> io::Result<Writer> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))?;
    let bytes = value.as_bytes();
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let null_fd = null.as_raw_fd();
    // SAFETY: after fork the child runs only async-signal-safe system calls (setpgid, dup2,
    // open, write, _exit) on memory prepared before the fork, never allocates, never returns to
    // Rust code of the parent, and ends with _exit (no destructors, no atexit handlers).
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => unsafe {
            libc::setpgid(0, 0);
            libc::dup2(null_fd, 0);
            libc::dup2(null_fd, 1);
            libc::dup2(null_fd, 2);
            let fd = libc::open(
                cpath.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            );
            if fd < 0 {
                libc::_exit(Errno::last_raw());
            }
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            let code = if n < 0 {
                Errno::last_raw()
            } else if n as usize != bytes.len() {
                libc::EIO
            } else {
                0
            };
            libc::_exit(code)
        },
        ForkResult::Parent { child } => Ok(Writer { pid: child }),
    }
}
