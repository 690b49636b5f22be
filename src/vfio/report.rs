//! What `bind` and `unbind` report: the targets, skipped devices, steps, proofs and the
//! outcome, printed as human text or as a `vfiotool.bind/1` document (docs/bind.md).

use crate::error::PathError;
use std::time::Duration;

use serde::Serialize;

use super::host::Host;
use super::proof::Proof;
use super::Step;
use crate::error::ExitKind;
use crate::pci::address::PciAddress;

pub const SCHEMA: &str = "vfiotool.bind/1";

#[derive(Debug, Clone)]
pub struct BindOptions {
    pub group: bool,
    pub force: bool,
    pub dry_run: bool,
    pub open_device: bool,
    pub timeout: Duration,
    /// Which VFIO interface proves the groups (`--backend`).
    pub backend: super::attach::BackendChoice,
}

/// Why a device is a target (JSON `why`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    /// Named on the command line.
    Requested,
    /// Another function of the same slot in the same IOMMU group: one card, taken with it.
    Card,
    /// Taken by --group.
    Group,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::Requested => "requested",
            Why::Card => "card",
            Why::Group => "group",
        })
    }
}

/// One device the command changes.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub address: PciAddress,
    pub vendor: String,
    pub device: String,
    pub class: String,
    pub iommu_group: Option<u32>,
    pub why: Why,
    pub driver_before: Option<String>,
    pub override_before: Option<String>,
    pub driver_after: Option<String>,
    pub override_after: Option<String>,
    /// A write to this device was still blocked in the kernel when vfiotool gave up waiting:
    /// the device was not read again, `driver_after`/`override_after` are unknown (null), and
    /// the error says what state it will be in.
    pub blocked: bool,
}

/// A device left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub address: PciAddress,
    pub reason: String,
}

/// The whole story of one run, printed as human text or as a `vfiotool.bind/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub command: &'static str,
    pub request: String,
    pub dry_run: bool,
    pub groups: Vec<u32>,
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
    /// Reasons the command refused to start (nothing was changed).
    pub refused: Vec<String>,
    pub steps: Vec<Step>,
    pub proofs: Vec<Proof>,
    /// Every group proven viable (bind only; false when no proof ran).
    pub viable: bool,
    pub rolled_back: bool,
    pub rollback_steps: Vec<Step>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub exit_code: u8,
    #[serde(skip)]
    pub exit: ExitKind,
}

impl Report {
    pub(crate) fn new(command: &'static str, request: &str, dry_run: bool) -> Self {
        Report {
            schema: SCHEMA,
            command,
            request: request.to_string(),
            dry_run,
            groups: Vec::new(),
            targets: Vec::new(),
            skipped: Vec::new(),
            refused: Vec::new(),
            steps: Vec::new(),
            proofs: Vec::new(),
            viable: false,
            rolled_back: false,
            rollback_steps: Vec::new(),
            warnings: Vec::new(),
            error: None,
            exit_code: 0,
            exit: ExitKind::Success,
        }
    }

    pub(crate) fn finish(mut self, exit: ExitKind, error: Option<String>) -> Self {
        self.exit = exit;
        self.exit_code = exit.code();
        if error.is_some() {
            self.error = error;
        }
        self
    }
}

pub(crate) fn hex(v: u32, w: usize) -> String {
    format!("{v:0w$x}")
}

/// A target as the host shows it now; an attribute that cannot be read is an error naming it.
pub(crate) fn target(host: &Host, addr: PciAddress, why: Why) -> Result<Target, PathError> {
    let (v, d) = host.ids(&addr)?;
    Ok(Target {
        address: addr,
        vendor: hex(v.into(), 4),
        device: hex(d.into(), 4),
        class: hex(host.class(&addr)?, 6),
        iommu_group: host.iommu_group(&addr)?,
        why,
        driver_before: host.driver(&addr)?,
        override_before: host.driver_override(&addr)?,
        driver_after: None,
        override_after: None,
        blocked: false,
    })
}
