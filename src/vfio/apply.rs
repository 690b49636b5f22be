//! Applying a bind to one device through the executor (`exec.rs`): record first, then
//! driver_override, unbind (timed, in a child process), drivers_probe and a re-read; the
//! helpers that describe a write still blocked in the kernel and keep its group locked.

use crate::vfio::{Action, Outcome};
use std::fs;
use std::time::Duration;

use super::bind::VFIO_PCI;
use super::exec::Executor;
use super::host::{Host, WriteError};
use super::report::{BindOptions, Target};
use super::state::{self, Record};
use super::{lock, Step};
use crate::pci::address::PciAddress;

/// A device is back but its record stayed: say so (a later `unbind` would act on it again).
pub(crate) fn record_left(addr: &PciAddress, e: crate::error::Error) -> String {
    format!(
        "{addr} is back on its original driver, but its bind record could not be removed ({}); remove it by hand",
        e.message
    )
}

/// Leave the group locks to the abandoned writer: dropping a guard would unlock the shared lock
/// (flock belongs to the open file, which the writer child shares), so the guards are leaked and
/// the lock ends when the last process holding the file (the writer) exits.
pub(crate) fn keep_locked(locks: Vec<lock::GroupLock>) {
    std::mem::forget(locks);
}

/// Each target's driver and override after the run, except a blocked device's: reading its
/// driver_override would block on the device lock a running remove() holds.
/// A read that fails leaves the field empty and comes back as a warning naming the file.
pub(crate) fn read_after(host: &Host, targets: &mut [Target], blocked: Option<PciAddress>) -> Vec<String> {
    let mut unread = Vec::new();
    for t in targets.iter_mut() {
        t.blocked = Some(t.address) == blocked;
        t.driver_after = None;
        t.override_after = None;
        if t.blocked {
            continue;
        }
        match (host.driver(&t.address), host.driver_override(&t.address)) {
            (Ok(d), Ok(o)) => {
                t.driver_after = d;
                t.override_after = o;
            }
            (Err(e), _) | (_, Err(e)) => unread.push(format!("state after the run unknown: {e}")),
        }
    }
    unread
}

pub(crate) use super::deverror::{BlockedWrite, DevError, Stuck};

/// One sysfs write about `addr` through the executor (a dry run records it as `planned`).
pub(crate) fn write_step(
    exec: &Executor,
    addr: &PciAddress,
    steps: &mut Vec<Step>,
    path: std::path::PathBuf,
    value: &str,
    timeout: Duration,
) -> Result<(), DevError> {
    let shown = path.display().to_string();
    match exec.write(addr, &path, value, timeout) {
        Ok(()) => {
            steps.push(Step::write(shown, value, exec.done(), None));
            Ok(())
        }
        Err(WriteError::TimedOut { after, pid }) => {
            steps.push(Step::write(
                shown.clone(),
                value,
                Outcome::Failed,
                Some(format!("still blocked after {} s", after.as_secs_f32())),
            ));
            Err(DevError::Blocked {
                write: Box::new(BlockedWrite {
                    value: value.trim_end().to_string(),
                    path: shown,
                    after,
                    pid,
                }),
                stuck: Box::new(Stuck::Write),
            })
        }
        Err(e) => {
            steps.push(Step::write(
                shown.clone(),
                value,
                Outcome::Failed,
                Some(e.to_string()),
            ));
            Err(DevError::Write {
                path: shown,
                value: value.trim_end().to_string(),
                error: e,
            })
        }
    }
}

/// What holds `addr` while a write to its driver's unbind blocks: the driver itself (its
/// remove() runs in the kernel) and any process /proc shows with the device open.
pub(crate) fn holders_text(host: &Host, addr: &PciAddress, driver: &str) -> String {
    let holders = host.likely_holders(addr);
    format!(
        "{driver}'s remove() has not returned (the kernel holds {addr}'s device lock until it does); \
         likely holders in /proc: {}",
        if holders.is_empty() {
            "none found (a kernel user such as a display server, nvidia-persistenced, or the driver \
             itself waiting for its hardware?)"
                .to_string()
        } else {
            holders.join(", ")
        }
    )
}

/// Keep other vfiotool runs off the device's group while the abandoned write is in flight: the
/// writer child inherited the lock, so the group stays locked; name it in the lock file.
pub(crate) fn note_lock_holder(host: &Host, addr: &PciAddress, pid: u32) {
    // The group was read when it was locked; if it cannot be read now, the lock file of
    // this device's group is not found, and the note is left out (the lock itself holds).
    let Ok(group) = host.iommu_group(addr) else {
        return;
    };
    let group = group.map_or_else(|| "none".to_string(), |g| g.to_string());
    let _ = fs::write(
        host.path("/run/vfiotool").join(format!("group-{group}.lock")),
        format!("{pid}, a write to {addr} still blocked in the kernel\n"),
    );
}

/// What `t` must get back. The device is not on vfio-pci, so normally what it has now; but a
/// record of an earlier run is kept when the device is still in that run's half-way state
/// (driver_override vfio-pci and no driver: a bind killed in the middle, or one whose unbind
/// stayed blocked in the kernel), or the original driver would be forgotten.
pub(crate) fn origin(host: &Host, t: &Target) -> (Record, bool) {
    let halfway = t.override_before.as_deref() == Some(VFIO_PCI) && t.driver_before.is_none();
    if halfway {
        if let Ok(Some(old)) = state::load(host, &t.address) {
            return (old, true);
        }
    }
    (
        Record {
            schema: state::RECORD_SCHEMA.into(),
            address: t.address.to_string(),
            driver: t.driver_before.clone(),
            driver_override: t.override_before.clone(),
        },
        false,
    )
}

pub(crate) fn bind_one(
    exec: &Executor,
    t: &Target,
    rec: &(Record, bool),
    opts: &BindOptions,
    steps: &mut Vec<Step>,
) -> Result<(), DevError> {
    let host = exec.host();
    let a = t.address;
    let dir = host.device_dir(&a);
    let record = state::path(host, &a);
    {
        let (rec, kept) = rec;
        if !exec.dry_run() {
            state::save(host, rec).map_err(DevError::Record)?;
        }
        steps.push(Step::other(
            Action::Record,
            record.display().to_string(),
            exec.done(),
            Some(format!(
                "driver {}, override {}{}",
                rec.driver.as_deref().unwrap_or("none"),
                rec.driver_override.as_deref().unwrap_or("none"),
                if *kept {
                    " (kept from an earlier run that stopped half-way)"
                } else {
                    ""
                }
            )),
        ));
    }
    let locked = || Stuck::BindLocked {
        addr: a,
        record: record.clone(),
    };
    write_step(
        exec,
        &a,
        steps,
        dir.join("driver_override"),
        VFIO_PCI,
        opts.timeout,
    )
    .map_err(|e| e.stuck(locked))?;
    if let Some(d) = &t.driver_before {
        write_step(
            exec,
            &a,
            steps,
            dir.join("driver/unbind"),
            &a.to_string(),
            opts.timeout,
        )
        .map_err(|e| match e {
            DevError::Blocked { write, .. } => DevError::Blocked {
                write,
                stuck: Box::new(Stuck::BindUnbinding {
                    addr: a,
                    driver: d.clone(),
                    holders: holders_text(host, &a, d),
                    record: record.clone(),
                }),
            },
            e @ DevError::Write { .. } => DevError::Unbinding {
                addr: a,
                driver: d.clone(),
                source: Box::new(e),
            },
            other => other,
        })?;
    }
    write_step(
        exec,
        &a,
        steps,
        host.sysfs().drivers_probe(),
        &a.to_string(),
        opts.timeout,
    )
    .map_err(|e| e.stuck(locked))?;
    let now = exec.driver(&a)?;
    if now.as_deref() == Some(VFIO_PCI) {
        steps.push(Step::other(
            Action::Check,
            dir.join("driver").display().to_string(),
            exec.done(),
            Some("vfio-pci".into()),
        ));
        Ok(())
    } else {
        steps.push(Step::other(
            Action::Check,
            dir.join("driver").display().to_string(),
            Outcome::Failed,
            Some(now.clone().unwrap_or_else(|| "no driver".into())),
        ));
        Err(DevError::NotBound {
            addr: a,
            got: now,
            no_group: host.iommu_group(&a)?.is_none(),
        })
    }
}
