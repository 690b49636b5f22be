//! Why a step on one device did not finish: one variant per failing step of `bind` and
//! `unbind`, each with what the user needs to know and do. The texts are the ones users see
//! (and tests pin); the data stays typed until it is printed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::host::WriteError;
use crate::error::PathError;
use crate::pci::address::PciAddress;

/// A sysfs write still blocked in the kernel at its deadline; process `pid` goes on with it.
#[derive(Debug)]
pub(crate) struct BlockedWrite {
    pub value: String,
    pub path: String,
    pub after: Duration,
    pub pid: u32,
}

impl fmt::Display for BlockedWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the write of {:?} to {} is still blocked after {} s (process {} goes on with it)",
            self.value,
            self.path,
            self.after.as_secs_f32(),
            self.pid
        )
    }
}

/// Where a blocked write left the device, and what to run once the kernel lets go.
#[derive(Debug)]
pub(crate) enum Stuck {
    /// Not yet placed in a flow (the bare write).
    Write,
    /// A bind's driver_override or drivers_probe write: the original driver is in `record`.
    BindLocked { addr: PciAddress, record: PathBuf },
    /// A bind's unbind from the host driver, whose remove() has not returned.
    BindUnbinding {
        addr: PciAddress,
        driver: String,
        holders: String,
        record: PathBuf,
    },
    /// A later step of an unbind.
    UnbindLocked { addr: PciAddress },
    /// An unbind's unbind from the current driver, whose remove() has not returned.
    UnbindUnbinding {
        addr: PciAddress,
        driver: String,
        holders: String,
        /// The override the device keeps (`None`: cleared).
        want_override: Option<String>,
        record_kept: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DevError {
    /// The kernel refused a sysfs write (or it could not be made).
    #[error("write {value:?} to {path}: {error}")]
    Write {
        path: String,
        value: String,
        error: WriteError,
    },
    /// The write that unbinds the device from its driver failed.
    #[error("unbinding {addr} from {driver}: {source}")]
    Unbinding {
        addr: PciAddress,
        driver: String,
        source: Box<DevError>,
    },
    /// The device's state could not be read, so nothing more is done to it.
    #[error("{0}")]
    Unreadable(#[from] PathError),
    /// The record of the original driver could not be saved (nothing was changed yet).
    #[error("{0}")]
    Record(crate::error::Error),
    /// vfio-pci did not take the device after drivers_probe.
    #[error(
        "vfio-pci did not bind {addr}: it is on {} after drivers_probe{}",
        got.as_deref().unwrap_or("no driver"),
        if *no_group {
            " (the device has no IOMMU group: enable the IOMMU, e.g. intel_iommu=on)"
        } else {
            " (see `dmesg | tail` for the probe error)"
        }
    )]
    NotBound {
        addr: PciAddress,
        got: Option<String>,
        no_group: bool,
    },
    /// An unbind left the device on another driver than its record names.
    #[error(
        "{addr} is on {} instead of {}; run `vfiotool unbind {addr}` or write {addr} to /sys/bus/pci/drivers/{}/bind",
        now.as_deref().unwrap_or("no driver"),
        want.as_deref().unwrap_or("no driver"),
        want.as_deref().unwrap_or("DRIVER")
    )]
    NotRestored {
        addr: PciAddress,
        now: Option<String>,
        want: Option<String>,
    },
    /// A write still blocked in the kernel: the kernel holds the device lock, so any read or
    /// write of the device's attributes would block too.
    #[error("{}", blocked_text(write, stuck))]
    Blocked {
        write: Box<BlockedWrite>,
        stuck: Box<Stuck>,
    },
}

impl DevError {
    pub(crate) fn message(self) -> String {
        self.to_string()
    }

    /// The writer process of a blocked write.
    pub(crate) fn blocked_pid(&self) -> Option<u32> {
        match self {
            DevError::Blocked { write, .. } => Some(write.pid),
            DevError::Write { .. }
            | DevError::Unbinding { .. }
            | DevError::Unreadable(_)
            | DevError::Record(_)
            | DevError::NotBound { .. }
            | DevError::NotRestored { .. } => None,
        }
    }

    /// Place a blocked write in its flow (`stuck`); other errors pass unchanged.
    pub(crate) fn stuck(self, stuck: impl FnOnce() -> Stuck) -> DevError {
        match self {
            DevError::Blocked { write, .. } => DevError::Blocked {
                write,
                stuck: Box::new(stuck()),
            },
            other => other,
        }
    }
}

fn blocked_text(m: &BlockedWrite, stuck: &Stuck) -> String {
    match stuck {
        Stuck::Write => m.to_string(),
        Stuck::BindLocked { addr: a, record } => format!(
            "{m}: {a} is locked in the kernel (a driver's probe or remove() is running, see `dmesg`), \
             so vfiotool stopped touching it; its original driver is recorded in {}; once the kernel \
             lets go, run `vfiotool unbind {a}` to give it back or `vfiotool bind {a}` to finish",
            record.display()
        ),
        Stuck::BindUnbinding {
            addr: a,
            driver: d,
            holders,
            record,
        } => format!(
            "unbinding {a} from {d}: {m}: {holders}. vfiotool stopped touching {a}: it has no driver \
                 now, and once remove() returns it stays so: no driver and driver_override vfio-pci \
                 (IOMMU group locked against other vfiotool runs until then). Its original driver is \
                 recorded in {}. When {d} lets go (see `dmesg`), run `vfiotool bind {a}` to finish \
                 the bind, or `vfiotool unbind {a}` to give it back to {d}",
            record.display()
        ),
        Stuck::UnbindLocked { addr } => format!(
            "{m}: {addr} is locked in the kernel (a driver's probe or remove() is running, see `dmesg`), \
             so vfiotool stopped touching it; run `vfiotool unbind {addr}` again once it lets go"
        ),
        Stuck::UnbindUnbinding {
            addr,
            driver,
            holders,
            want_override,
            record_kept,
        } => format!(
            "unbinding {addr} from {driver}: {m}: {holders}. vfiotool stopped touching {addr}: once remove() \
                 returns it has no driver and driver_override {}; then run `vfiotool unbind {addr}` \
                 again{}",
            want_override.as_deref().unwrap_or("clear"),
            if *record_kept { " (its record is kept)" } else { "" }
        ),
    }
}
