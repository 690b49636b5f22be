//! SIGINT/SIGTERM/SIGHUP (a dropped SSH session) during a host change: the signals are blocked in every thread and a watcher
//! thread receives them with `sigwait`, setting a flag the bind loop checks between steps, so an
//! interrupted bind still rolls back instead of dying half-way. No signal handler, no `unsafe`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};

/// Set once SIGINT, SIGTERM or SIGHUP arrived.
#[derive(Clone, Default)]
pub struct Interrupted(Arc<AtomicBool>);

impl Interrupted {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
}

/// Block SIGINT, SIGTERM and SIGHUP for this thread (and threads it starts later) and start a
/// watcher. Call before any other thread exists. Returns a flag that goes up on any of them.
/// SIGHUP matters as much as the others: an SSH session that drops in the middle of a bind sends
/// it, and its default action would end the process half-way.
///
/// Fails (and the caller must not start changing the host) when the signals cannot be blocked
/// or the watcher cannot start: a signal would then end the process without a rollback.
pub fn watch() -> Result<Interrupted, WatchError> {
    let flag = Interrupted::default();
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.thread_block().map_err(WatchError::Block)?;
    let f = flag.clone();
    let started = std::thread::Builder::new().name("signals".into()).spawn(move || {
        // Bounded: each wait returns with one signal; after the first the flag stays set.
        for _ in 0..1024 {
            if set.wait().is_ok() {
                f.set();
            }
        }
    });
    if let Err(e) = started {
        // Nobody would receive them: let them act as before (end the process) rather than be
        // lost, and tell the caller not to start.
        let _ = set.thread_unblock();
        return Err(WatchError::Thread(e));
    }
    Ok(flag)
}

/// Why the signals of a host-changing run cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot block SIGINT/SIGTERM/SIGHUP ({0})")]
    Block(nix::Error),
    #[error("cannot start the signal watcher ({0})")]
    Thread(std::io::Error),
}

/// The watcher for a command that changes the host: when it cannot run, the command stops
/// before its first change (a dry run goes on: it changes nothing).
pub fn watch_or_refuse(command: &str, dry_run: bool) -> crate::error::Result<Interrupted> {
    match watch() {
        Ok(f) => Ok(f),
        Err(_) if dry_run => Ok(Interrupted::default()),
        Err(e) => Err(crate::error::Error::system(format!(
            "{command}: {e}, so an interrupted run could not roll back; nothing was changed"
        ))),
    }
}
