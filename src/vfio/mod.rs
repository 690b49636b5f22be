//! Host changes for VFIO: bind devices to vfio-pci and prove the group usable, give them back,
//! and dump option ROMs from a device.
//!
//! Owns: sysfs writes under `/sys/bus/pci` (driver_override, unbind, drivers_probe, rom), the
//! VFIO ioctls (`ioctl.rs`, the only `unsafe` code in the crate), bind records and locks under
//! `/run/vfiotool`. It never parses ROM bytes itself (that is `rom::analyze`) and never prints:
//! the commands in `commands/bind.rs` print the reports built here.
//!
//! A host change is a straight line: plan (targets, refusals) -> apply with a record written
//! before the first write to each device -> proof (ioctls) -> keep, or roll back every device to
//! its recorded driver and override.

pub mod bind;
pub mod host;
pub mod ioctl;
pub mod iommufd;
pub mod lock;
pub mod proof;
pub mod romdump;
pub mod signals;
pub mod state;
pub mod writer;

use serde::Serialize;

/// One thing vfiotool did (or, with `--dry-run`, would do) to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// "write" (a sysfs write), "ioctl", "module", "record", "check".
    pub action: &'static str,
    /// The path, ioctl name or module the step is about.
    pub target: String,
    /// The value written, or the ioctl name for ioctl steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// "ok", "failed", "planned" (dry run), "skipped".
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Step {
    pub fn write(
        target: impl Into<String>,
        value: &str,
        result: &'static str,
        detail: Option<String>,
    ) -> Self {
        Step {
            action: "write",
            target: target.into(),
            value: Some(value.to_string()),
            result,
            detail,
        }
    }

    pub fn ioctl(name: &str, target: &str, result: &'static str, detail: Option<String>) -> Self {
        Step {
            action: "ioctl",
            target: target.to_string(),
            value: Some(name.to_string()),
            result,
            detail,
        }
    }

    pub fn other(
        action: &'static str,
        target: impl Into<String>,
        result: &'static str,
        detail: Option<String>,
    ) -> Self {
        Step {
            action,
            target: target.into(),
            value: None,
            result,
            detail,
        }
    }

    /// One human line: `write vfio-pci > /sys/.../driver_override: ok`.
    pub fn human(&self) -> String {
        let what = match (self.action, &self.value) {
            ("write", Some(v)) => format!("write {:?} > {}", v.trim_end(), self.target),
            ("ioctl", Some(v)) => format!("ioctl {v} on {}", self.target),
            (a, _) => format!("{a} {}", self.target),
        };
        match &self.detail {
            Some(d) if !d.is_empty() => format!("{what}: {} ({d})", self.result),
            _ => format!("{what}: {}", self.result),
        }
    }
}
