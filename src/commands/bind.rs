//! `vfiotool bind`, `vfiotool unbind` (alias `restore`) and `vfiotool rom dump`.
//!
//! The work happens in `crate::vfio`; these functions parse the address, run it, and print the
//! report (human text, or one `vfiotool.bind/1` / `vfiotool.rom-dump/1` JSON document). A failed
//! bind still prints its report (steps and rollback) and then the error on stderr.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{BindArgs, UnbindArgs, VfioBackend};
use crate::error::{Error, ExitKind, Result};
use crate::output::{Output, Style};
use crate::pci::address::AddressSpec;
use crate::vfio::attach::{Backend, BackendChoice};
use crate::vfio::bind::{self as vbind, BindOptions, Report};
use crate::vfio::host::Host;
use crate::vfio::ioctl::Kernel;
use crate::vfio::signals;
use crate::vfio::Outcome;

fn spec(text: &str) -> Result<AddressSpec> {
    AddressSpec::parse(text).map_err(|e| Error::usage(e.to_string()))
}

pub fn bind<W: Write>(args: &BindArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let spec = spec(&args.device)?;
    let interrupted = signals::watch_or_refuse("bind", args.dry_run)?;
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

pub(crate) fn backend_choice(b: VfioBackend) -> BackendChoice {
    match b {
        VfioBackend::Legacy => BackendChoice::Legacy,
        VfioBackend::Iommufd => BackendChoice::Iommufd,
        VfioBackend::Auto => BackendChoice::Auto,
    }
}

pub fn unbind<W: Write>(args: &UnbindArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let host = Host::system().with_progress(out.json);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let Some(device) = args.device.as_deref().filter(|_| !args.all) else {
        return unbind_all(&host, args.dry_run, timeout, out);
    };
    let spec = spec(device)?;
    let interrupted = signals::watch_or_refuse("unbind", args.dry_run)?;
    let report = vbind::unbind(&host, &spec, args.dry_run, timeout, &interrupted);
    print_report(out, &report)
}

#[derive(Serialize)]
struct UnbindAllDoc<'a> {
    schema: &'static str,
    reports: &'a [Report],
}

/// `unbind --all`: every device with a bind record, one report each (JSON: one
/// `vfiotool.unbind-all/1` document holding them). The exit code is the first failure's.
fn unbind_all<W: Write>(
    host: &Host,
    dry_run: bool,
    timeout: Duration,
    out: &mut Output<W>,
) -> Result<ExitKind> {
    let interrupted = signals::watch_or_refuse("unbind --all", dry_run)?;
    let mut reports = Vec::new();
    for a in crate::vfio::state::recorded(host)? {
        reports.push(vbind::unbind(
            host,
            &AddressSpec::Function(a),
            dry_run,
            timeout,
            &interrupted,
        ));
    }
    let exit = reports
        .iter()
        .map(|r| r.exit)
        .find(|e| *e != ExitKind::Success)
        .unwrap_or(ExitKind::Success);
    if out.json {
        out.json_doc(&UnbindAllDoc {
            schema: "vfiotool.unbind-all/1",
            reports: &reports,
        })
        .map_err(Error::output)?;
        return Ok(exit);
    }
    if reports.is_empty() {
        writeln!(
            out.out,
            "unbind --all: no bind record under /run/vfiotool/devices, nothing to give back"
        )
        .map_err(Error::output)?;
    }
    for r in &reports {
        print_report(out, r)?;
    }
    Ok(exit)
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
            } else if !r.refused.is_empty() {
                "unchanged (refused)".to_string()
            } else if t.blocked {
                "BLOCKED in the kernel (see below)".to_string()
            } else {
                t.driver_after.clone().unwrap_or_else(|| "no driver".into())
            }
        )?;
    }
    // A card's other functions in the same group go with it: say so, they were not named.
    for t in r
        .targets
        .iter()
        .filter(|t| t.why == crate::vfio::report::Why::Card)
    {
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
            Outcome::Failed => Style::Fail,
            Outcome::Planned | Outcome::Skipped => Style::Dim,
            Outcome::Ok => Style::Ok,
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
