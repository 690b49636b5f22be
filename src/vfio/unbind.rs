//! `unbind` and the rollback of a failed bind: give each device back to its recorded driver
//! and driver_override (or the kernel's default), through the same executor, so `--dry-run`
//! lists the steps the real run makes.

use crate::vfio::{Action, Outcome};
use std::time::Duration;

use super::apply::*;
use super::bind::{lock_groups, not_root, resolve, without_bridges, VFIO_PCI};
use super::exec::Executor;
use super::host::Host;
use super::report::{target, Report, Target, Why};
use super::signals::Interrupted;
use super::state::{self, Record};
use super::Step;
use crate::error::ExitKind;
use crate::pci::address::{AddressSpec, PciAddress};

/// Give `addr` back to `rec`'s driver and override (None: the kernel's default, override clear).
/// Returns the driver it ended on.
pub(crate) fn restore_one(
    exec: &Executor,
    addr: &PciAddress,
    rec: Option<&Record>,
    timeout: Duration,
    steps: &mut Vec<Step>,
) -> Result<Option<String>, DevError> {
    let host = exec.host();
    let dir = host.device_dir(addr);
    let want_override = rec.and_then(|r| r.driver_override.clone());
    let want_driver = rec.and_then(|r| r.driver.clone());
    exec.expect_probe(addr, want_driver.clone());
    let again = || Stuck::UnbindLocked { addr: *addr };
    // An empty write ("\n") clears driver_override.
    let ov = want_override.clone().unwrap_or_else(|| "\n".into());
    write_step(exec, addr, steps, dir.join("driver_override"), &ov, timeout).map_err(|e| e.stuck(again))?;
    let current = exec.driver(addr)?;
    if let Some(cur) = current.as_deref().filter(|c| Some(*c) != want_driver.as_deref()) {
        write_step(
            exec,
            addr,
            steps,
            dir.join("driver/unbind"),
            &addr.to_string(),
            timeout,
        )
        .map_err(|e| {
            e.stuck(|| Stuck::UnbindUnbinding {
                addr: *addr,
                driver: cur.to_string(),
                holders: holders_text(host, addr, cur),
                want_override: want_override.clone(),
                record_kept: rec.is_some(),
            })
        })?;
    }
    let originally_driverless = rec.is_some() && want_driver.is_none();
    if exec.driver(addr)?.is_none() && !originally_driverless {
        write_step(
            exec,
            addr,
            steps,
            host.sysfs().drivers_probe(),
            &addr.to_string(),
            timeout,
        )
        .map_err(|e| e.stuck(again))?;
        if let Some(d) = &want_driver {
            if exec.driver(addr)?.as_deref() != Some(d.as_str()) && exec.driver(addr)?.is_none() {
                let bind = host.sysfs().driver_dir(d).join("bind");
                if let Err(e @ DevError::Blocked { .. }) =
                    write_step(exec, addr, steps, bind, &addr.to_string(), timeout)
                {
                    return Err(e.stuck(again));
                }
            }
        }
    }
    let now = exec.driver(addr)?;
    steps.push(Step::other(
        Action::Check,
        dir.join("driver").display().to_string(),
        if rec.is_none() || now == want_driver {
            exec.done()
        } else {
            Outcome::Failed
        },
        Some(now.clone().unwrap_or_else(|| "no driver".into())),
    ));
    if rec.is_some() && now != want_driver {
        return Err(DevError::NotRestored {
            addr: *addr,
            now,
            want: want_driver,
        });
    }
    Ok(now)
}

/// Give every function `spec` names back to its recorded driver (or the kernel's default).
pub fn unbind(
    host: &Host,
    spec: &AddressSpec,
    dry_run: bool,
    timeout: Duration,
    interrupted: &Interrupted,
) -> Report {
    let mut r = Report::new("unbind", &spec.to_string(), dry_run);
    if !dry_run && host.is_live() && not_root() {
        return r.finish(
            ExitKind::System,
            Some(
                "unbind changes drivers through sysfs and needs root; run it with sudo (nothing was changed)"
                    .into(),
            ),
        );
    }
    let locks = if dry_run {
        Vec::new()
    } else {
        match lock_groups(host, spec) {
            Ok(l) => l,
            Err(e) => return r.finish(e.kind, Some(e.message)),
        }
    };
    let found = match resolve(host, spec) {
        Ok(f) => f,
        Err(e) => return r.finish(e.kind, Some(e.message)),
    };
    // Fail closed: a device whose state cannot be read is not touched (nothing was changed).
    let unreadable = |r: Report, e: crate::error::PathError| {
        r.finish(ExitKind::System, Some(format!("{e}; nothing was changed")))
    };
    let chosen = match without_bridges(host, found, &mut r.skipped) {
        Ok(c) => c,
        Err(e) => return unreadable(r, e),
    };
    for a in chosen {
        match target(host, a, Why::Requested) {
            Ok(t) => r.targets.push(t),
            Err(e) => return unreadable(r, e),
        }
    }
    if r.targets.is_empty() {
        return r.finish(
            ExitKind::BadInput,
            Some(format!("{spec} is a PCI bridge; nothing to unbind")),
        );
    }
    // `bind` takes a card's other functions in the same group with it; give them back with it
    // too (only those vfiotool bound: they have a record).
    let named: Vec<(PciAddress, Option<u32>)> =
        r.targets.iter().map(|t| (t.address, t.iommu_group)).collect();
    let card = |r: &Report| -> Result<Vec<Target>, crate::error::PathError> {
        let mut out = Vec::new();
        for (a, g) in &named {
            for f in host.slot_functions(&a.slot())? {
                let taken = r.targets.iter().chain(&out).any(|t: &Target| t.address == f);
                if !taken
                    && g.is_some()
                    && state::exists(host, &f)?
                    && host.iommu_group(&f)? == *g
                    && !host.is_bridge(&f)?
                {
                    out.push(target(host, f, Why::Card)?);
                }
            }
        }
        Ok(out)
    };
    match card(&r) {
        Ok(more) => r.targets.extend(more),
        Err(e) => return unreadable(r, e),
    }
    r.targets.sort_by_key(|t| t.address);
    let mut groups: Vec<u32> = r.targets.iter().filter_map(|t| t.iommu_group).collect();
    groups.sort();
    groups.dedup();
    r.groups = groups;
    let mut errors = Vec::new();
    let mut blocked: Option<PciAddress> = None;
    let exec = Executor::new(host, dry_run);
    for i in 0..r.targets.len() {
        if interrupted.is_set() {
            errors.push("interrupted by a signal".to_string());
            break;
        }
        let a = r.targets[i].address;
        let rec = match state::load(host, &a) {
            Ok(rec) => rec,
            Err(e) => {
                errors.push(e.message);
                continue;
            }
        };
        let on_vfio = r.targets[i].driver_before.as_deref() == Some(VFIO_PCI);
        let has_override = r.targets[i].override_before.is_some();
        if !on_vfio && !has_override && rec.is_none() {
            r.steps.push(Step::other(
                Action::Check,
                a.to_string(),
                Outcome::Skipped,
                Some(format!(
                    "not bound by vfiotool (on {})",
                    r.targets[i].driver_before.as_deref().unwrap_or("no driver")
                )),
            ));
            continue;
        }
        if blocked.is_some() {
            // A device of this card is locked in the kernel; its siblings wait for the next run.
            errors.push(format!(
                "{a} not touched: another function of this run is blocked"
            ));
            continue;
        }
        match restore_one(&exec, &a, rec.as_ref(), timeout, &mut r.steps) {
            Ok(_) if dry_run => {}
            Ok(now) => {
                if let Err(e) = state::remove(host, &a) {
                    r.warnings.push(record_left(&a, e));
                }
                if now.as_deref() == Some(VFIO_PCI) {
                    r.warnings.push(format!(
                        "{a} landed on vfio-pci again: vfio-pci claims its ID (vfio-pci.ids= on the kernel \
                         command line, `options vfio-pci ids=` in /etc/modprobe.d, or a new_id write); \
                         remove that to give it back to the host"
                    ));
                } else if rec.is_none() && now.is_none() {
                    r.warnings.push(format!(
                        "{a} has no bind record and no driver claimed it after drivers_probe"
                    ));
                }
            }
            Err(e) => {
                if let Some(pid) = e.blocked_pid() {
                    note_lock_holder(host, &a, pid);
                    blocked = Some(a);
                }
                errors.push(e.message());
            }
        }
    }
    let unread = read_after(host, &mut r.targets, blocked);
    r.warnings.extend(unread);
    if blocked.is_some() {
        keep_locked(locks);
    }
    if errors.is_empty() {
        r.finish(ExitKind::Success, None)
    } else {
        r.finish(ExitKind::RollbackFailed, Some(errors.join("; ")))
    }
}
