//! `vfiotool check`, `list`, `groups` and `capture`: the host view.
//!
//! Each command reads a snapshot through [`HostRoot`] (live or captured), builds one report
//! struct, and prints it as human text or as a `vfiotool.<name>/1` JSON document (docs/host.md).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::{CaptureArgs, CheckArgs, GroupsArgs, ListArgs};
use crate::error::{Error, ExitKind, Result};
use crate::host::check::{self, Status};
use crate::host::{capture as cap, HostRoot};
use crate::output::{Output, Style};
use crate::pci::address::AddressSpec;
use crate::pci::device::{Device, Unreadable};
use crate::pci::groups::{Groups, IommuGroup, Verdict};
use crate::pci::modules::ModuleAliases;
use crate::pci::names::{NameQuery, Names};

pub const LIST_SCHEMA: &str = "vfiotool.list/1";
pub const GROUPS_SCHEMA: &str = "vfiotool.groups/1";

/// The host root the root options name (`HostRoot::from_args`, the one resolver).
/// A device as `list` and `groups` print it: the snapshot plus names and candidate modules.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    #[serde(flatten)]
    pub device: Device,
    pub class_name: String,
    pub vendor_name: Option<String>,
    pub device_name: Option<String>,
    pub subsystem_vendor_name: Option<String>,
    pub subsystem_name: Option<String>,
    /// Kernel modules whose aliases match (from modules.alias; empty when unavailable).
    pub modules: Vec<String>,
    /// Why the host probably needs this device (storage, network, USB, chipset, boot GPU).
    pub host_role: Option<&'static str>,
    /// sysfs `numa_node` (-1: the platform does not say, as on single-node hosts; null:
    /// unreadable). Pin a GPU's VM to the CPUs of that node.
    pub numa_node: Option<i32>,
}

/// Names and modules for a set of devices, each looked up once.
struct Lookup {
    names: Names,
    aliases: ModuleAliases,
    root: HostRoot,
}

impl Lookup {
    fn new(root: &HostRoot, pci_ids: Option<&Path>, devices: &[&Device]) -> Result<Lookup> {
        let mut q = NameQuery::default();
        for d in devices {
            q.add_device(d);
        }
        let names = match pci_ids {
            Some(p) if !p.is_file() => {
                return Err(Error::usage(format!(
                    "{}: no such pci.ids file; leave out --pci-ids to use the system's",
                    p.display()
                )))
            }
            Some(p) => Names::load(p, &q)?,
            None => Names::load_system(&q)?,
        };
        let aliases = match root.modules_dir() {
            Some(dir) => ModuleAliases::load(&dir.join("modules.alias"))?,
            None => ModuleAliases::default(),
        };
        Ok(Lookup {
            names,
            aliases,
            root: root.clone(),
        })
    }

    fn view(&self, d: &Device) -> DeviceView {
        let n = &self.names;
        let subsystem_name = match (d.subsystem_vendor_id, d.subsystem_device_id) {
            (Some(sv), Some(sd)) => n.subsystem(d.vendor_id, d.device_id, sv, sd).map(str::to_string),
            _ => None,
        };
        DeviceView {
            class_name: n.class(d.class_code),
            vendor_name: n.vendor(d.vendor_id).map(str::to_string),
            device_name: n.device(d.vendor_id, d.device_id).map(str::to_string),
            subsystem_vendor_name: d
                .subsystem_vendor_id
                .and_then(|v| n.vendor(v))
                .map(str::to_string),
            subsystem_name,
            modules: self.aliases.modules_for(d),
            host_role: d.host_role(),
            numa_node: crate::host::devfacts::numa_node(&self.root, &d.address),
            device: d.clone(),
        }
    }
}

/// Every readable device, plus a note for each one that is not (printed on stderr in human
/// mode, listed under `unreadable` in JSON).
fn read_devices(root: &HostRoot) -> Result<(Vec<Device>, Vec<Unreadable>)> {
    Device::read_each(&root.sysfs).map_err(|e| {
        let mut err = Error::from(e);
        if !root.sysfs.is_live() {
            err.message
                .push_str("; --sysfs-root/--root must name a directory laid out like /sys");
        }
        err
    })
}

/// An in-memory output with the same colour rules, written to `out` in one go by the caller.
fn buffered<W: Write>(out: &Output<W>) -> Output<Vec<u8>> {
    Output {
        out: Vec::new(),
        json: out.json,
        color: out.color,
    }
}

/// `01:00.0` on a domain-0-only host, the full form when any domain is not 0 (as lspci does).
fn addr_text(d: &Device, full: bool) -> String {
    if full {
        d.address.to_string()
    } else {
        d.address.short()
    }
}

/// lspci -nn's first line: `01:00.0 VGA compatible controller [0300]: NVIDIA ... [10de:1b80] (rev a1)`.
fn title(v: &DeviceView, full: bool) -> String {
    let d = &v.device;
    // As lspci -nn: unknown names collapse to "Device", the numbers follow in brackets.
    let name = match (&v.vendor_name, &v.device_name) {
        (Some(vendor), Some(device)) => format!("{vendor} {device}"),
        (Some(vendor), None) => format!("{vendor} Device"),
        (None, _) => "Device".to_string(),
    };
    let mut s = format!(
        "{} {} [{:04x}]: {name} [{:04x}:{:04x}]",
        addr_text(d, full),
        v.class_name,
        d.class16(),
        d.vendor_id,
        d.device_id
    );
    if let Some(r) = d.revision.filter(|r| *r != 0) {
        s.push_str(&format!(" (rev {r:02x})"));
    }
    s
}

fn print_device<W: Write>(
    out: &mut Output<W>,
    v: &DeviceView,
    full: bool,
    indent: &str,
) -> std::io::Result<()> {
    let d = &v.device;
    writeln!(out.out, "{indent}{}", title(v, full))?;
    if let (Some(sv), Some(sd)) = (d.subsystem_vendor_id, d.subsystem_device_id) {
        let name = match (&v.subsystem_vendor_name, &v.subsystem_name) {
            (Some(vendor), Some(name)) => format!("{vendor} {name}"),
            (Some(vendor), None) => format!("{vendor} Device"),
            (None, _) => "Device".to_string(),
        };
        writeln!(out.out, "{indent}\tSubsystem: {name} [{sv:04x}:{sd:04x}]")?;
    }
    if let Some(drv) = &d.driver {
        writeln!(out.out, "{indent}\tKernel driver in use: {drv}")?;
    }
    if let Some(o) = &d.driver_override {
        writeln!(out.out, "{indent}\tDriver override: {o}")?;
    }
    if !v.modules.is_empty() {
        writeln!(out.out, "{indent}\tKernel modules: {}", v.modules.join(", "))?;
    }
    let mut extra = vec![match d.iommu_group {
        Some(g) => format!("IOMMU group: {g}"),
        None => "IOMMU group: none".to_string(),
    }];
    if !d.reset_methods.is_empty() {
        extra.push(format!("Reset: {}", d.reset_methods.join(" ")));
    }
    if let Some(b) = d.boot_vga {
        extra.push(format!("Boot VGA: {}", if b { "yes" } else { "no" }));
    }
    if d.rom {
        extra.push("ROM: yes".into());
    }
    if let Some(n) = v.numa_node.filter(|n| *n >= 0) {
        extra.push(format!("NUMA node: {n}"));
    }
    if d.bridge {
        extra.push("Bridge".into());
    }
    let line = out.paint(Style::Dim, &extra.join(" | "));
    writeln!(out.out, "{indent}\t{line}")
}

#[derive(Serialize)]
struct ListDoc<'a> {
    schema: &'static str,
    devices: &'a [DeviceView],
    /// Devices that could not be read (empty on a healthy host).
    unreadable: &'a [Unreadable],
}

/// `note: 0000:01:00.0 could not be read: ...` on stderr, one line per device.
fn note_unreadable(unreadable: &[Unreadable]) {
    for u in unreadable {
        eprintln!(
            "note: {} could not be read ({}); listed without it",
            u.address, u.error
        );
    }
}

pub fn list<W: Write>(args: &ListArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let root = HostRoot::from_args(&args.root);
    let spec = match &args.address {
        Some(a) => Some(AddressSpec::parse(a).map_err(|e| Error::usage(e.to_string()))?),
        None => None,
    };
    let (all, unreadable) = read_devices(&root)?;
    let full = all.iter().any(|d| d.address.domain != 0);
    let selected: Vec<&Device> = all
        .iter()
        .filter(|d| spec.is_none_or(|s| s.matches(&d.address)))
        .filter(|d| args.class.is_none_or(|c| c.matches(d)))
        .filter(|d| args.group.is_none_or(|g| d.iommu_group == Some(g)))
        .collect();
    if let Some(s) = &spec {
        if let Some(u) = unreadable.iter().find(|u| s.matches(&u.address)) {
            if !all.iter().any(|d| s.matches(&d.address)) {
                return Err(Error::bad_input(format!(
                    "{} could not be read: {}",
                    u.address, u.error
                )));
            }
        }
        if !all.iter().any(|d| s.matches(&d.address)) {
            return Err(Error::usage(format!(
                "no PCI device {s} under {}; `vfiotool list` shows the addresses",
                root.sysfs.pci_devices_dir().display()
            )));
        }
    }
    if let Some(g) = args.group {
        if !all.iter().any(|d| d.iommu_group == Some(g)) {
            return Err(Error::usage(format!(
                "no device is in IOMMU group {g}; `vfiotool groups` shows the groups"
            )));
        }
    }
    let lookup = Lookup::new(&root, args.pci_ids.as_deref(), &selected)?;
    let views: Vec<DeviceView> = selected.iter().map(|d| lookup.view(d)).collect();
    if out.json {
        out.json_doc(&ListDoc {
            schema: LIST_SCHEMA,
            devices: &views,
            unreadable: &unreadable,
        })
        .map_err(Error::output)?;
    } else {
        note_unreadable(&unreadable);
        // One write for the whole listing: stdout is line-buffered and lists run to thousands of lines.
        let mut buf = buffered(out);
        for v in &views {
            print_device(&mut buf, v, full, "").map_err(Error::output)?;
        }
        out.out.write_all(&buf.out).map_err(Error::output)?;
    }
    Ok(ExitKind::Success)
}

#[derive(Serialize)]
struct GroupView {
    group: u32,
    verdict: Verdict,
    devices: Vec<DeviceView>,
    slots: Vec<crate::pci::address::SlotAddress>,
    host_critical: Vec<crate::pci::groups::HostCritical>,
}

#[derive(Serialize)]
struct GroupsDoc {
    schema: &'static str,
    /// false when the host has no IOMMU groups at all.
    iommu: bool,
    groups: Vec<GroupView>,
    /// Devices without an IOMMU group.
    ungrouped: Vec<DeviceView>,
    /// Devices that could not be read (empty on a healthy host).
    unreadable: Vec<Unreadable>,
}

/// `shared by 00:1d, 00:1f; host-critical: 00:1d.0 storage controller`.
fn verdict_text(g: &IommuGroup, full: bool) -> String {
    match g.verdict {
        Verdict::Isolated => "isolated".into(),
        Verdict::IsolatedExceptBridges => "isolated except bridges".into(),
        Verdict::Shared => {
            let slots: Vec<String> = g
                .slots
                .iter()
                .map(|s| {
                    let t = s.to_string();
                    if full {
                        t
                    } else {
                        t.get(5..).unwrap_or(&t).to_string()
                    }
                })
                .collect();
            let mut s = format!("shared by {} slots: {}", slots.len(), slots.join(", "));
            if !g.host_critical.is_empty() {
                let crit: Vec<String> = g
                    .host_critical
                    .iter()
                    .map(|h| {
                        let a = if full {
                            h.address.to_string()
                        } else {
                            h.address.short()
                        };
                        format!("{a} {}", h.role)
                    })
                    .collect();
                s.push_str(&format!("; host-critical: {}", crit.join(", ")));
            }
            s
        }
    }
}

pub fn groups<W: Write>(args: &GroupsArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let root = HostRoot::from_args(&args.root);
    let (all, unreadable) = read_devices(&root)?;
    let full = all.iter().any(|d| d.address.domain != 0);
    let refs: Vec<&Device> = all.iter().collect();
    let lookup = Lookup::new(&root, args.pci_ids.as_deref(), &refs)?;
    let grouped = Groups::from_devices(all.clone());
    let doc = GroupsDoc {
        schema: GROUPS_SCHEMA,
        iommu: !grouped.groups.is_empty(),
        groups: grouped
            .groups
            .iter()
            .map(|g| GroupView {
                group: g.group,
                verdict: g.verdict,
                devices: g.devices.iter().map(|d| lookup.view(d)).collect(),
                slots: g.slots.clone(),
                host_critical: g.host_critical.clone(),
            })
            .collect(),
        ungrouped: grouped.ungrouped.iter().map(|d| lookup.view(d)).collect(),
        unreadable,
    };
    if out.json {
        out.json_doc(&doc).map_err(Error::output)?;
        return Ok(ExitKind::Success);
    }
    note_unreadable(&doc.unreadable);
    let mut buf = buffered(out);
    print_groups(&mut buf, &grouped, &doc, full).map_err(Error::output)?;
    out.out.write_all(&buf.out).map_err(Error::output)?;
    Ok(ExitKind::Success)
}

fn print_groups<W: Write>(
    out: &mut Output<W>,
    grouped: &Groups,
    doc: &GroupsDoc,
    full: bool,
) -> std::io::Result<()> {
    for (g, view) in grouped.groups.iter().zip(&doc.groups) {
        let style = match g.verdict {
            Verdict::Isolated | Verdict::IsolatedExceptBridges => Style::Ok,
            Verdict::Shared => Style::Warn,
        };
        let verdict = out.paint(style, &verdict_text(g, full));
        let head = out.paint(Style::Bold, &format!("IOMMU group {}", g.group));
        writeln!(out.out, "{head}: {verdict}")?;
        for v in &view.devices {
            writeln!(out.out, "  {}", short_line(v, full))?;
        }
    }
    if !doc.ungrouped.is_empty() {
        let head = out.paint(Style::Bold, "No IOMMU group");
        let why = if grouped.groups.is_empty() {
            " (the IOMMU is off: see `vfiotool check`)"
        } else {
            ""
        };
        writeln!(out.out, "{head}{why}:")?;
        for v in &doc.ungrouped {
            writeln!(out.out, "  {}", short_line(v, full))?;
        }
    }
    Ok(())
}

/// One line per device in `groups`: the lspci title plus driver and role.
fn short_line(v: &DeviceView, full: bool) -> String {
    let mut s = title(v, full);
    let mut tags = Vec::new();
    if let Some(d) = &v.device.driver {
        tags.push(format!("driver {d}"));
    }
    if let Some(n) = v.numa_node.filter(|n| *n >= 0 && v.device.is_display()) {
        tags.push(format!("NUMA node {n}"));
    }
    if v.device.bridge {
        tags.push("bridge".to_string());
    } else if let Some(role) = v.host_role {
        tags.push(role.to_string());
    }
    if !tags.is_empty() {
        s.push_str(&format!(" ({})", tags.join(", ")));
    }
    s
}

pub fn check<W: Write>(args: &CheckArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let root = HostRoot::from_args(&args.root);
    // The definitive VFIO_SET_IOMMU test needs the live host's /dev/vfio.
    let probe = |g: &Groups| {
        check::probe_set_iommu(&crate::vfio::ioctl::Kernel, &crate::vfio::host::Host::system(), g)
    };
    let report = if root.is_live() {
        check::run_with(&root, Some(&probe))
    } else {
        check::run(&root)
    };
    if out.json {
        out.json_doc(&report).map_err(Error::output)?;
    } else {
        for c in &report.checks {
            let (word, style) = match c.status {
                Status::Ok => ("ok  ", Style::Ok),
                Status::Warn => ("warn", Style::Warn),
                Status::Fail => ("FAIL", Style::Fail),
                Status::Skipped => ("skip", Style::Dim),
            };
            let word = out.paint(style, word);
            writeln!(out.out, "{word} {:<20} {}", c.id, c.message).map_err(Error::output)?;
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "fix:" } else { "    " };
                    writeln!(out.out, "     {:<20} {lead} {line}", "").map_err(Error::output)?;
                }
            }
        }
        let summary = if report.ready {
            out.paint(Style::Ok, "ready: every needed check passed")
        } else {
            out.paint(
                Style::Fail,
                "not ready: a needed check failed (see the fixes above)",
            )
        };
        writeln!(out.out, "{summary}").map_err(Error::output)?;
    }
    Ok(if report.ready {
        ExitKind::Success
    } else {
        ExitKind::VerdictNotMet
    })
}

pub fn capture<W: Write>(args: &CaptureArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let root = HostRoot::from_args(&args.root);
    let summary = cap::capture(&root, &args.output)?;
    if out.json {
        out.json_doc(&summary).map_err(Error::output)?;
    } else {
        writeln!(
            out.out,
            "captured {} PCI devices, {} IOMMU groups, {} files into {}",
            summary.devices,
            summary.groups,
            summary.files,
            args.output.display()
        )
        .map_err(Error::output)?;
        writeln!(
            out.out,
            "read it back with: vfiotool check --root {0}; vfiotool groups --root {0}",
            args.output.display()
        )
        .map_err(Error::output)?;
    }
    Ok(ExitKind::Success)
}
