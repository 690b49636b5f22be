//! `vfiotool bind`, `vfiotool unbind` (alias `restore`) and `vfiotool rom dump`.
//!
//! The work happens in `crate::vfio`; these functions parse the address, run it, and print the
//! report (human text, or one `vfiotool.bind/1` / `vfiotool.rom-dump/1` JSON document). A failed
//! bind still prints its report (steps and rollback) and then the error on stderr.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{BindArgs, DumpVia, RomDumpArgs, UnbindArgs, VfioBackend};
use crate::error::{Error, ExitKind, Result};
use crate::fsutil;
use crate::output::{Output, Style};
use crate::pci::address::{AddressSpec, PciAddress};
use crate::vfio::bind::{self as vbind, BackendChoice, BindOptions, Report};
use crate::vfio::host::Host;
use crate::vfio::ioctl::Kernel;
use crate::vfio::proof::Backend;
use crate::vfio::romdump::{self, Via};
use crate::vfio::signals;

fn spec(text: &str) -> Result<AddressSpec> {
    AddressSpec::parse(text).map_err(|e| Error::usage(e.to_string()))
}

pub fn bind<W: Write>(args: &BindArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let spec = spec(&args.device)?;
    let interrupted = signals::watch();
    let opts = BindOptions {
        group: args.group,
        force: args.force,
        dry_run: args.dry_run,
        open_device: args.open_device,
        timeout: Duration::from_secs(args.timeout.max(1)),
        backend: backend_choice(args.backend),
    };
    let report = vbind::bind(
        &Host::system().with_progress(out.json),
        &Kernel,
        &spec,
        &opts,
        &interrupted,
    );
    print_report(out, &report)
}

fn backend_choice(b: VfioBackend) -> BackendChoice {
    match b {
        VfioBackend::Legacy => BackendChoice::Legacy,
        VfioBackend::Iommufd => BackendChoice::Iommufd,
        VfioBackend::Auto => BackendChoice::Auto,
    }
}

pub fn unbind<W: Write>(args: &UnbindArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let spec = spec(&args.device)?;
    let interrupted = signals::watch();
    let report = vbind::unbind(
        &Host::system().with_progress(out.json),
        &spec,
        args.dry_run,
        Duration::from_secs(args.timeout.max(1)),
        &interrupted,
    );
    print_report(out, &report)
}

fn print_report<W: Write>(out: &mut Output<W>, r: &Report) -> Result<ExitKind> {
    if out.json {
        out.json_doc(r).map_err(Error::output)?;
    } else {
        print_human(out, r).map_err(Error::output)?;
    }
    if let Some(e) = &r.error {
        if !out.json {
            let _ = writeln!(std::io::stderr(), "vfiotool: {} {}: {e}", r.command, r.request);
        }
    }
    Ok(r.exit)
}

fn print_human<W: Write>(out: &mut Output<W>, r: &Report) -> std::io::Result<()> {
    let groups = r
        .groups
        .iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let head = format!(
        "{}{} {} (IOMMU group {})",
        r.command,
        if r.dry_run { " --dry-run" } else { "" },
        r.request,
        if groups.is_empty() { "none".into() } else { groups }
    );
    writeln!(out.out, "{}", out.paint(Style::Bold, &head))?;
    for t in &r.targets {
        writeln!(
            out.out,
            "  device  {} [{}:{}] class {} ({}): {} -> {}",
            t.address,
            t.vendor,
            t.device,
            t.class,
            t.why,
            t.driver_before.as_deref().unwrap_or("no driver"),
            if r.dry_run {
                if r.command == "bind" {
                    "vfio-pci".to_string()
                } else {
                    "default driver".to_string()
                }
            } else if t.blocked {
                "BLOCKED in the kernel (see below)".to_string()
            } else {
                t.driver_after.clone().unwrap_or_else(|| "no driver".into())
            }
        )?;
    }
    // A card's other functions in the same group go with it: say so, they were not named.
    for t in r.targets.iter().filter(|t| t.why == "card") {
        writeln!(
            out.out,
            "  card    {} is another function of the same card ({}) in IOMMU group {}: {} with it",
            t.address,
            t.address.slot(),
            t.iommu_group
                .map_or_else(|| "none".to_string(), |g| g.to_string()),
            if r.command == "bind" {
                "taken"
            } else {
                "given back"
            }
        )?;
    }
    for s in &r.skipped {
        writeln!(out.out, "  skipped {}: {}", s.address, s.reason)?;
    }
    for s in &r.steps {
        let style = match s.result {
            "failed" => Style::Fail,
            "planned" | "skipped" => Style::Dim,
            _ => Style::Ok,
        };
        writeln!(out.out, "  {}", out.paint(style, &s.human()))?;
    }
    if !r.rollback_steps.is_empty() {
        writeln!(out.out, "  rollback:")?;
        for s in &r.rollback_steps {
            writeln!(out.out, "    {}", s.human())?;
        }
    }
    for p in &r.proofs {
        let line = match (p.ok(), p.backend) {
            (true, Backend::Legacy) => format!(
                "  proof: group {} viable, container set, IOMMU {} set (backend legacy)",
                p.group,
                p.iommu_set.unwrap_or("?")
            ),
            (true, Backend::Iommufd) => {
                let devs = p
                    .cdev
                    .iter()
                    .map(|c| {
                        format!(
                            "{} as {} (devid {}, IOAS {} -> page table {}, {} regions, ROM region {:#x})",
                            c.address,
                            c.cdev.as_deref().unwrap_or("?"),
                            c.devid.unwrap_or(0),
                            c.ioas_id.unwrap_or(0),
                            c.hwpt_id.unwrap_or(0),
                            c.info.map_or(0, |i| i.num_regions),
                            c.rom_region_size.unwrap_or(0)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                format!(
                    "  proof: group {} through iommufd (backend iommufd): {devs} bound, attached, detached",
                    p.group
                )
            }
            (false, b) => format!(
                "  proof: group {} FAILED (backend {}): {}",
                p.group,
                b.name(),
                p.error.as_deref().unwrap_or("")
            ),
        };
        writeln!(
            out.out,
            "{}",
            out.paint(if p.ok() { Style::Ok } else { Style::Fail }, &line)
        )?;
    }
    for w in &r.warnings {
        writeln!(out.out, "{}", out.paint(Style::Warn, &format!("  warning: {w}")))?;
    }
    for f in &r.refused {
        writeln!(out.out, "{}", out.paint(Style::Fail, &format!("  refused: {f}")))?;
    }
    let verdict = match (r.exit, r.dry_run) {
        (ExitKind::Success, true) => "dry run: nothing was changed".to_string(),
        (ExitKind::Success, false) if r.command == "bind" => "bound to vfio-pci and proven".to_string(),
        (ExitKind::Success, false) => "given back to the host".to_string(),
        (ExitKind::RolledBack, _) => "FAILED, rolled back".to_string(),
        (ExitKind::RollbackFailed, _) if r.targets.iter().any(|t| t.blocked) => {
            "FAILED: a write is still blocked in the kernel (the message below says the state and what to run)"
                .to_string()
        }
        (ExitKind::RollbackFailed, _) => "FAILED, ROLLBACK INCOMPLETE".to_string(),
        (ExitKind::VerdictNotMet, _) if !r.refused.is_empty() => "refused: nothing was changed".to_string(),
        (k, _) => format!("failed ({})", k.name()),
    };
    writeln!(out.out, "result: {verdict}")
}

/// One `vfiotool.rom-dump/1` document.
#[derive(Serialize)]
struct DumpDoc<'a> {
    schema: &'static str,
    device: PciAddress,
    via: Via,
    bar_size: u64,
    bytes: usize,
    trimmed: usize,
    file: Option<String>,
    notes: &'a [String],
    analysis: &'a crate::rom::RomAnalysis,
}

pub fn rom_dump<W: Write>(args: &RomDumpArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let addr = PciAddress::parse(&args.device).map_err(|e| Error::usage(e.to_string()))?;
    // SIGINT/SIGTERM must not end the process between "write 1" and "write 0" to `rom`.
    let _interrupted = signals::watch();
    let host = Host::system().with_progress(out.json);
    if !host.exists(&addr) {
        return Err(Error::system(format!(
            "no PCI device {addr} (nothing under /sys/bus/pci/devices); check the address with `lspci -D`"
        )));
    }
    let (via, result) = match args.via {
        DumpVia::Sysfs => (Via::Sysfs, romdump::via_sysfs(&host, &addr)),
        DumpVia::Vfio => (
            Via::Vfio,
            romdump::via_vfio(&host, &Kernel, &addr, backend_choice(args.backend)),
        ),
    };
    let mut dump = result.map_err(|(kind, msg)| Error::new(kind, msg))?;
    // The device is known: judge the ROM for this card (SeaBIOS's id match, GOP by its class).
    if let Ok(d) = crate::pci::device::Device::read(&host.sysfs(), &addr) {
        if let Ok(a) = crate::rom::analyze_for(&dump.bytes, Some(&super::rom::card_of(&d))) {
            dump.analysis = a;
        }
    }
    if let Some(path) = &args.output {
        fsutil::atomic_write(path, &dump.bytes, args.force)?;
    }
    let file = args.output.as_ref().map(|p| p.display().to_string());
    if out.json {
        out.json_doc(&DumpDoc {
            schema: "vfiotool.rom-dump/1",
            device: addr,
            via,
            bar_size: dump.bar_size,
            bytes: dump.bytes.len(),
            trimmed: dump.trimmed,
            file,
            notes: &dump.notes,
            analysis: &dump.analysis,
        })
        .map_err(Error::output)?;
    } else {
        let w = &mut out.out;
        let mut write = || -> std::io::Result<()> {
            writeln!(
                w,
                "{addr}: {} bytes of ROM via {} (BAR {:#x}), {} image(s), firmware: {}",
                dump.bytes.len(),
                if via == Via::Sysfs { "sysfs" } else { "vfio" },
                dump.bar_size,
                dump.analysis.images.len(),
                dump.analysis.verdict.firmware
            )?;
            for n in &dump.notes {
                writeln!(w, "  note: {n}")?;
            }
            for l in &dump.analysis.verdict.lines {
                writeln!(w, "  {l}")?;
            }
            match &file {
                Some(f) => writeln!(w, "written to {f}"),
                None => writeln!(w, "not written (no -o FILE)"),
            }
        };
        write().map_err(Error::output)?;
    }
    Ok(ExitKind::Success)
}
