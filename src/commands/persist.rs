//! `vfiotool persist`: bind devices to vfio-pci at every boot (the plan and files are
//! `crate::config::persist`'s; this reads the devices, runs it and prints it).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::config::functions_of;
use crate::cli::PersistArgs;
use crate::config::persist::{self, FileAction};
use crate::error::{Error, ExitKind, Result};
use crate::output::Output;
use crate::pci::address::{AddressSpec, PciAddress};
use crate::pci::device::Device;

/// Drivers vfio-pci must load before: the devices' current drivers and the usual drivers of
/// their kind, so a GPU driver in the initramfs cannot claim the device first.
fn softdeps_for(devices: &[Device]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |d: &str| {
        let module = d.replace('-', "_");
        if !matches!(module.as_str(), "vfio_pci" | "pci_stub" | "pcieport") && !out.contains(&module) {
            out.push(module);
        }
    };
    for d in devices {
        if let Some(driver) = &d.driver {
            add(driver);
        }
        if d.base_class() == 0x03 {
            crate::pci::drivers::gpu_drivers(d.vendor_id)
                .iter()
                .for_each(|m| add(m));
        }
        if d.class16() == 0x0403 {
            crate::pci::drivers::AUDIO_DRIVERS.iter().for_each(|m| add(m));
        }
    }
    out.sort();
    out
}

#[derive(Serialize)]
struct PersistDoc<'a> {
    schema: &'static str,
    root: String,
    dry_run: bool,
    #[serde(flatten)]
    plan: &'a persist::Plan,
    initramfs_ran: bool,
}

pub fn persist<W: Write>(args: &PersistArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let root = crate::host::HostRoot::from_args(&args.root).base;
    let live = root == Path::new("/");
    if live && !args.dry_run && !nix::unistd::geteuid().is_root() {
        return Err(Error::system(
            "persist writes under /etc and /usr/lib: run it as root (or see the change first with --dry-run)",
        ));
    }
    let manifest = persist::read_manifest(&root)?;
    let tools = persist::detect(&root);
    let (devices, softdeps) = if args.remove {
        match &args.device {
            None => (Vec::new(), Vec::new()),
            Some(text) => {
                let spec = AddressSpec::parse(text).map_err(|e| Error::usage(e.to_string()))?;
                let keep: Vec<String> = manifest
                    .devices
                    .iter()
                    .filter(|d| d.parse::<PciAddress>().map(|a| !spec.matches(&a)).unwrap_or(true))
                    .cloned()
                    .collect();
                if keep.len() == manifest.devices.len() {
                    return Err(Error::usage(format!(
                        "{text} is not persisted (persisted: {})",
                        manifest.devices.join(" ")
                    )));
                }
                let softdeps = if keep.is_empty() {
                    Vec::new()
                } else {
                    manifest.softdeps.clone()
                };
                (keep, softdeps)
            }
        }
    } else {
        let sysfs = crate::host::HostRoot::from_args(&args.root).sysfs;
        let text = args.device.as_deref().unwrap_or_default();
        let (_, found, _) = functions_of(&sysfs, text)?;
        let found: Vec<Device> = found.into_iter().filter(|d| !d.bridge).collect();
        let mut devices = manifest.devices.clone();
        for d in &found {
            let a = d.address.to_string();
            if !devices.contains(&a) {
                devices.push(a);
            }
        }
        let mut softdeps = manifest.softdeps.clone();
        for s in softdeps_for(&found) {
            if !softdeps.contains(&s) {
                softdeps.push(s);
            }
        }
        softdeps.sort();
        (devices, softdeps)
    };
    let options = if args.remove {
        manifest.options
    } else {
        manifest.options.union(persist::ModuleOptions {
            kvm_ignore_msrs: args.kvm_ignore_msrs,
            disable_vga: args.disable_vga,
        })
    };
    let plan = persist::plan(&root, &tools, devices, softdeps, options)?;
    if !args.dry_run {
        persist::apply(&root, &plan)?;
    }
    let run_initramfs =
        args.yes && !args.dry_run && live && plan.changes.iter().any(|c| c.action != FileAction::Unchanged);
    let mut initramfs_ran = false;
    if run_initramfs {
        if let Some(cmd) = &plan.initramfs_command {
            let status = std::process::Command::new("sh")
                .args(["-c", cmd])
                .status()
                .map_err(|e| Error::system(format!("running `{cmd}`: {e}")))?;
            if !status.success() {
                return Err(Error::system(format!(
                    "`{cmd}` failed ({status}); the files are in place, run it again by hand"
                )));
            }
            initramfs_ran = true;
        }
    }
    if out.json {
        out.json_doc(&PersistDoc {
            schema: "vfiotool.persist/1",
            root: root.display().to_string(),
            dry_run: args.dry_run,
            plan: &plan,
            initramfs_ran,
        })
        .map_err(Error::output)?;
        return Ok(ExitKind::Success);
    }
    let w = &mut out.out;
    let io = Error::output;
    let what = if plan.devices.is_empty() {
        "no device bound at boot".to_string()
    } else {
        format!("bind at boot ({:?}): {}", plan.method, plan.devices.join(" ")).to_lowercase()
    };
    writeln!(w, "{what}").map_err(io)?;
    let mut opts = Vec::new();
    if plan.options.kvm_ignore_msrs {
        opts.push("kvm ignore_msrs=1 report_ignored_msrs=0");
    }
    if plan.options.disable_vga {
        opts.push("vfio-pci disable_vga=1");
    }
    if !opts.is_empty() {
        writeln!(w, "module options: {}", opts.join(", ")).map_err(io)?;
    }
    for c in &plan.changes {
        let verb = if args.dry_run { "would" } else { "did" };
        let backup = c
            .backup
            .as_deref()
            .map(|b| format!(" (backup: {b})"))
            .unwrap_or_default();
        writeln!(w, "{verb} {} {}{backup}", c.action.name(), c.path).map_err(io)?;
        if args.dry_run && c.action != FileAction::Unchanged {
            write!(w, "{}", c.diff).map_err(io)?;
        }
    }
    for n in &plan.notes {
        writeln!(w, "note: {n}").map_err(io)?;
    }
    match (&plan.initramfs_command, initramfs_ran) {
        (Some(cmd), true) => writeln!(w, "ran: {cmd}").map_err(io)?,
        (Some(cmd), false) if live => {
            writeln!(w, "next: {cmd}   (or run persist again with --yes)").map_err(io)?
        }
        (Some(cmd), false) => writeln!(w, "not run below a scratch root: {cmd}").map_err(io)?,
        (None, _) => {}
    }
    Ok(ExitKind::Success)
}
