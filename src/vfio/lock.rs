//! One vfiotool run per IOMMU group at a time: an exclusive, non-blocking `flock` on
//! `/run/vfiotool/group-N.lock`, held until the guard is dropped (the kernel releases it when the
//! process dies, so a crash never leaves a stale lock).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::host::Host;
use crate::error::{Error, Result};

/// A held group lock.
pub struct GroupLock {
    _lock: Flock<File>,
}

/// Lock IOMMU group `group` (or `"nogroup"` devices when the IOMMU is off).
pub fn lock_group(host: &Host, name: &str) -> Result<GroupLock> {
    let dir = host.path("/run/vfiotool");
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "create directory", &e))?;
    let path = dir.join(format!("group-{name}.lock"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, "open lock file", &e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(GroupLock { _lock: lock })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(Error::system(format!(
                "IOMMU group {name} is locked by another vfiotool run{} ({}); wait for it to finish and try again",
                if holder.is_empty() { String::new() } else { format!(" (pid {holder})") },
                path.display()
            )))
        }
        Err((_, e)) => Err(Error::system(format!("{}: flock: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_group_is_refused_until_the_first_is_dropped() {
        let t = tempfile::tempdir().unwrap();
        let host = Host::at(t.path());
        let first = lock_group(&host, "7").unwrap();
        let e = lock_group(&host, "7").err().unwrap();
        assert!(
            e.message.contains("locked by another vfiotool run"),
            "{}",
            e.message
        );
        assert!(lock_group(&host, "8").is_ok());
        drop(first);
        assert!(lock_group(&host, "7").is_ok());
    }
}
