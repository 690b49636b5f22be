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

pub mod apply;
pub mod attach;
pub mod bind;
pub(crate) mod deverror;
pub mod exec;
pub mod guard;
pub mod host;
pub mod ioctl;
pub mod iommufd;
pub mod lock;
pub mod proof;
pub mod report;
pub mod romdump;
pub mod signals;
pub mod state;
pub mod unbind;
pub mod writer;

use serde::Serialize;

/// What kind of thing a [`Step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A sysfs write.
    Write,
    Ioctl,
    /// modprobe.
    Module,
    /// A bind record written under /run/vfiotool.
    Record,
    /// A re-read of the state.
    Check,
}

/// How a [`Step`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    /// Dry run: the step the real run makes next.
    Planned,
    Skipped,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Planned => "planned",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One thing vfiotool did (or, with `--dry-run`, would do) to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub action: Action,
    /// The path, ioctl name or module the step is about.
    pub target: String,
    /// The value written, or the ioctl name for ioctl steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Step {
    pub fn write(target: impl Into<String>, value: &str, result: Outcome, detail: Option<String>) -> Self {
        Step {
            action: Action::Write,
            target: target.into(),
            value: Some(value.to_string()),
            result,
            detail,
        }
    }

    pub fn ioctl(name: &str, target: &str, result: Outcome, detail: Option<String>) -> Self {
        Step {
            action: Action::Ioctl,
            target: target.to_string(),
            value: Some(name.to_string()),
            result,
            detail,
        }
    }

    pub fn other(action: Action, target: impl Into<String>, result: Outcome, detail: Option<String>) -> Self {
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
            (Action::Write, Some(v)) => format!("write {:?} > {}", v.trim_end(), self.target),
            (Action::Ioctl, Some(v)) => format!("ioctl {v} on {}", self.target),
            (Action::Write, None) => format!("write {}", self.target),
            (Action::Ioctl, None) => format!("ioctl {}", self.target),
            (Action::Module, _) => format!("module {}", self.target),
            (Action::Record, _) => format!("record {}", self.target),
            (Action::Check, _) => format!("check {}", self.target),
        };
        let result = self.result.name();
        match &self.detail {
            Some(d) if !d.is_empty() => format!("{what}: {result} ({d})"),
            _ => format!("{what}: {result}"),
        }
    }
}
