//! The executor of a host change: one planner (`bind.rs`) drives it, and a dry run is the same
//! code path with an executor that records instead of writing.
//!
//! [`Executor::Live`] writes through [`Host::write_timed`] and reads the device state back from
//! sysfs. [`Executor::DryRun`] writes nothing: it keeps an overlay of what each write would do
//! (driver_override set, driver unbound, drivers_probe binding the override's driver or the
//! driver the device had) and answers later reads from it, so the planner takes the same
//! branches and records the same steps (names, paths, values, order) as the real run, with the
//! result `planned` instead of `ok`.

use crate::error::PathError;
use crate::vfio::Outcome;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::host::{Host, WriteError};
use crate::pci::address::PciAddress;

/// What a dry run believes about one device after the writes it recorded.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    driver: Option<Option<String>>,
    driver_override: Option<Option<String>>,
}

pub enum Executor<'a> {
    Live(&'a Host),
    DryRun {
        host: &'a Host,
        overlay: RefCell<BTreeMap<PciAddress, Overlay>>,
        /// The driver drivers_probe would pick for a device without an override (its driver
        /// before the run: the best a dry run can know of the kernel's choice).
        default_driver: RefCell<BTreeMap<PciAddress, Option<String>>>,
    },
}

impl<'a> Executor<'a> {
    pub fn new(host: &'a Host, dry_run: bool) -> Self {
        if dry_run {
            Executor::DryRun {
                host,
                overlay: RefCell::default(),
                default_driver: RefCell::default(),
            }
        } else {
            Executor::Live(host)
        }
    }

    pub fn host(&self) -> &'a Host {
        match self {
            Executor::Live(h) | Executor::DryRun { host: h, .. } => h,
        }
    }

    pub fn dry_run(&self) -> bool {
        matches!(self, Executor::DryRun { .. })
    }

    /// The result word of a step that went through: `ok`, or `planned` in a dry run.
    pub fn done(&self) -> Outcome {
        if self.dry_run() {
            Outcome::Planned
        } else {
            Outcome::Ok
        }
    }

    /// Tell a dry run which driver drivers_probe gives `addr` when no override is set (a
    /// restore: the recorded driver; None: unknown, taken as no driver). No-op when live.
    pub fn expect_probe(&self, addr: &PciAddress, driver: Option<String>) {
        if let Executor::DryRun { default_driver, .. } = self {
            default_driver.borrow_mut().insert(*addr, driver);
        }
    }

    /// The bound driver, as the device has it (live) or would have it (dry run).
    pub fn driver(&self, addr: &PciAddress) -> Result<Option<String>, PathError> {
        match self {
            Executor::Live(h) => h.driver(addr),
            Executor::DryRun { host, overlay, .. } => {
                match overlay.borrow().get(addr).and_then(|o| o.driver.clone()) {
                    Some(d) => Ok(d),
                    None => host.driver(addr),
                }
            }
        }
    }

    fn driver_override(&self, addr: &PciAddress) -> Result<Option<String>, PathError> {
        match self {
            Executor::Live(h) => h.driver_override(addr),
            Executor::DryRun { host, overlay, .. } => {
                match overlay.borrow().get(addr).and_then(|o| o.driver_override.clone()) {
                    Some(d) => Ok(d),
                    None => host.driver_override(addr),
                }
            }
        }
    }

    /// Write `value` to the sysfs attribute `path` about device `addr` (live), or record what
    /// the write would do to it (dry run).
    pub fn write(
        &self,
        addr: &PciAddress,
        path: &Path,
        value: &str,
        timeout: Duration,
    ) -> Result<(), WriteError> {
        let Executor::DryRun {
            overlay,
            default_driver,
            ..
        } = self
        else {
            return self.host().write_timed(path, value, timeout);
        };
        let before = self.driver(addr).map_err(WriteError::Read)?;
        let ov = self.driver_override(addr).map_err(WriteError::Read)?;
        default_driver.borrow_mut().entry(*addr).or_insert(before);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let parent = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let mut map = overlay.borrow_mut();
        let o = map.entry(*addr).or_default();
        match (parent, name) {
            (_, "driver_override") => {
                let v = value.trim();
                o.driver_override = Some((!v.is_empty()).then(|| v.to_string()));
            }
            ("driver", "unbind") => o.driver = Some(None),
            (_, "drivers_probe") => {
                let picked = ov.or_else(|| default_driver.borrow().get(addr).cloned().flatten());
                o.driver = Some(picked);
            }
            (drv, "bind") => o.driver = Some(Some(drv.to_string())),
            _ => {}
        }
        Ok(())
    }
}
