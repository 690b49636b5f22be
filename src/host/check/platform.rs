//! The platform checks: KVM, the IOMMU, its command line and interrupt remapping.

use crate::host::intremap::{self, ir_chips};

use super::facts::*;
use super::*;

pub(super) fn check_kvm(root: &HostRoot, f: &Facts) -> Check {
    let (flag, firmware, module) = match f.cpu {
        Cpu::Amd => ("svm", "AMD SVM (AMD-V)", "kvm_amd"),
        _ => ("vmx", "Intel VT-x (VMX)", "kvm_intel"),
    };
    let has_flag = f.flags.iter().any(|x| x == "vmx" || x == "svm");
    let dev_kvm = root.path("dev/kvm").exists();
    if f.flags.is_empty() {
        return warn(
            "kvm",
            true,
            "no CPU flags in /proc/cpuinfo: cannot tell whether the CPU has virtualization",
            "run vfiotool check on the host itself (not a container), or capture /proc/cpuinfo",
        );
    }
    let hyp = if f.flags.iter().any(|x| x == "hypervisor") {
        " (this host is itself a VM: enable nested virtualization on its host)"
    } else {
        ""
    };
    match (has_flag, dev_kvm) {
        (true, true) => ok(
            "kvm",
            true,
            format!("CPU virtualization ({flag}) and /dev/kvm present"),
        ),
        (true, false) => fail(
            "kvm",
            format!("CPU has {flag} but /dev/kvm is missing"),
            format!("modprobe {module}   (persist: echo {module} > /etc/modules-load.d/kvm.conf)"),
        ),
        (false, _) => fail(
            "kvm",
            format!("no vmx/svm flag in /proc/cpuinfo: CPU virtualization is off or absent{hyp}"),
            format!("enable {firmware} in the firmware (BIOS/UEFI) setup, then reboot"),
        ),
    }
}

pub(super) fn check_iommu(root: &HostRoot, f: &Facts) -> Check {
    let firmware = match f.cpu {
        Cpu::Amd => "AMD-Vi / IOMMU (often \"SVM\" and \"IOMMU\" in AMD CBS/NBIO)",
        _ => "Intel VT-d",
    };
    let acpi_table = match f.cpu {
        Cpu::Amd => "IVRS",
        _ => "DMAR",
    };
    if f.iommu_active() {
        let mut units = f.iommu_units.clone();
        let more = units.len().saturating_sub(4);
        units.truncate(4);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return ok(
            "iommu",
            true,
            format!(
                "enabled: {} IOMMU unit(s) ({}{more}), {} groups",
                f.iommu_units.len(),
                units.join(", "),
                f.group_count
            ),
        );
    }
    let table = root.sysfs.join("firmware/acpi/tables").join(acpi_table);
    let table_note = if root.sysfs.join("firmware/acpi/tables").exists() && !table.exists() {
        format!(" and the firmware has no ACPI {acpi_table} table")
    } else {
        String::new()
    };
    let disabled = ["intel_iommu=off", "amd_iommu=off", "iommu=off"]
        .into_iter()
        .find(|a| f.has_arg(a));
    let fix = match disabled {
        Some(arg) => f.boot.fix(&[f.iommu_on_arg()], &[arg]),
        None if !table_note.is_empty() => {
            format!("enable {firmware} in the firmware (BIOS/UEFI) setup, then reboot")
        }
        None => format!(
            "enable {firmware} in the firmware setup if it is off, and\n{}",
            f.boot.fix(&[f.iommu_on_arg(), "iommu=pt"], &[])
        ),
    };
    if f.iommu_units.is_empty() {
        fail(
            "iommu",
            format!("the IOMMU is off: /sys/class/iommu is empty{table_note}"),
            fix,
        )
    } else {
        fail(
            "iommu",
            format!(
                "{} IOMMU unit(s) but no IOMMU groups under /sys/kernel/iommu_groups",
                f.iommu_units.len()
            ),
            fix,
        )
    }
}

pub(super) fn check_cmdline(f: &Facts) -> Check {
    let want = f.iommu_on_arg();
    let off = ["intel_iommu=off", "amd_iommu=off", "iommu=off"]
        .into_iter()
        .find(|a| f.has_arg(a));
    let on = f.has_arg(want);
    let pt = f.arg_value("iommu") == Some("pt");
    if f.cmdline.is_empty() {
        return warn(
            "cmdline",
            true,
            "/proc/cmdline is empty or missing",
            "capture /proc/cmdline with the tree (vfiotool capture does)",
        );
    }
    if let Some(arg) = off {
        return fail(
            "cmdline",
            format!("{arg} on the kernel command line turns the IOMMU off"),
            f.boot.fix(&[want], &[arg]),
        );
    }
    let pt_note = if pt {
        "iommu=pt set"
    } else {
        "iommu=pt not set (optional: host devices skip IOMMU translation)"
    };
    match (on, f.iommu_active()) {
        (true, _) => ok("cmdline", true, format!("{want} set; {pt_note}")),
        (false, true) => ok(
            "cmdline",
            true,
            format!("{want} not set but the kernel enabled the IOMMU by default; {pt_note}"),
        ),
        (false, false) => {
            let mut add = vec![want];
            if !pt {
                add.push("iommu=pt");
            }
            fail(
                "cmdline",
                format!("{want} missing from /proc/cmdline and the IOMMU is off"),
                f.boot.fix(&add, &[]),
            )
        }
    }
}

/// Intel DMAR units whose extended capability has the IR bit (3): (with IR, total read).
fn intel_ir_support(root: &HostRoot, f: &Facts) -> (usize, usize) {
    let units = intremap::dmar_units(
        root,
        f.iommu_units
            .iter()
            .filter(|u| u.starts_with("dmar"))
            .map(String::as_str),
    );
    (units.iter().filter(|u| u.ir()).count(), units.len())
}

pub(super) fn check_interrupt_remapping(root: &HostRoot, f: &Facts, probe: &IrProbe) -> Check {
    let id = "interrupt_remapping";
    let probe_note = match probe {
        IrProbe::Passed { group } => format!("VFIO_SET_IOMMU succeeded on group {group}"),
        IrProbe::Refused { group, error } => format!("VFIO_SET_IOMMU refused on group {group}: {error}"),
        IrProbe::NotTested(why) => format!("definitive VFIO_SET_IOMMU test not tested: {why}"),
    };
    let unsafe_fix = "or, knowing the risk (a guest can forge interrupts to the host), \
                      echo 'options vfio_iommu_type1 allow_unsafe_interrupts=1' > /etc/modprobe.d/vfio-unsafe.conf";
    if let IrProbe::Passed { .. } = probe {
        return ok(id, true, format!("working: {probe_note}"));
    }
    if !f.iommu_active() {
        return fail(
            id,
            format!("no IOMMU, so no interrupt remapping ({probe_note})"),
            "turn the IOMMU on first (see the iommu check)",
        );
    }
    let chips = f.interrupts.as_deref().map(ir_chips);
    let (with_ir, total) = intel_ir_support(root, f);
    let hw = if total > 0 {
        format!("; ecap IR bit set on {with_ir} of {total} DMAR unit(s)")
    } else {
        String::new()
    };
    if let IrProbe::Refused { .. } = probe {
        return fail(
            id,
            format!("{probe_note}{hw}"),
            format!("enable interrupt remapping (x2APIC / VT-d in the firmware setup), {unsafe_fix}"),
        );
    }
    match chips {
        Some(c) if !c.is_empty() => ok(
            id,
            true,
            format!("enabled ({} in /proc/interrupts){hw}; {probe_note}", c.join(", ")),
        ),
        Some(_) => {
            let disabled_by = ["intremap=off", "nointremap"]
                .into_iter()
                .find(|a| f.has_arg(a))
                .or_else(|| {
                    f.arg_value("intel_iommu")
                        .filter(|v| v.contains("irqremap"))
                        .map(|_| "intel_iommu=...irqremap")
                });
            let why = if let Some(arg) = disabled_by {
                format!("{arg} on the kernel command line disables it")
            } else if total > 0 && with_ir == 0 {
                format!(
                    "the IOMMU hardware does not support it (ecap IR bit clear on all {total} DMAR units)"
                )
            } else {
                "no IR- interrupt chips in /proc/interrupts".to_string()
            };
            // Once allow_unsafe_interrupts is set, suggesting it again helps nobody.
            let tail = if f.allow_unsafe == Some(true) {
                ""
            } else {
                unsafe_fix
            };
            let fix = match disabled_by {
                Some(arg) => format!("{}\n{tail}", f.boot.fix(&[], &[arg]))
                    .trim_end()
                    .to_string(),
                None => format!("enable interrupt remapping (x2APIC / VT-d) in the firmware setup {tail}")
                    .trim_end()
                    .to_string(),
            };
            if f.allow_unsafe == Some(true) {
                warn(
                    id,
                    true,
                    format!("not available ({why}); VFIO works only because allow_unsafe_interrupts is set; {probe_note}"),
                    fix,
                )
            } else {
                fail(
                    id,
                    format!("not available: {why}; VFIO_SET_IOMMU will fail with EPERM; {probe_note}"),
                    fix,
                )
            }
        }
        None => warn(
            id,
            true,
            format!("/proc/interrupts is missing: cannot tell{hw}; {probe_note}"),
            "run on the live host, or capture /proc/interrupts",
        ),
    }
}

pub(super) fn check_unsafe_interrupts(f: &Facts) -> Check {
    let id = "unsafe_interrupts";
    let in_conf = f.modprobe.iter().find(|l| {
        l.words.first().map(String::as_str) == Some("options")
            && l.words.get(1).map(|m| norm(m)) == Some("vfio_iommu_type1".into())
            && l.words
                .iter()
                .any(|w| w == "allow_unsafe_interrupts=1" || w == "allow_unsafe_interrupts=Y")
    });
    let on_cmdline = f
        .arg_value("vfio_iommu_type1.allow_unsafe_interrupts")
        .is_some_and(|v| v == "1" || v == "Y");
    let risk = "a guest can send arbitrary MSIs to the host (DMA-forged interrupts): \
                only acceptable when interrupt remapping is truly unavailable and the guest is trusted";
    let remove = match (in_conf, on_cmdline) {
        (Some(l), _) => format!(
            "remove allow_unsafe_interrupts=1 from {} once interrupt remapping works",
            l.file
        ),
        (None, true) => f.boot.fix(&[], &["vfio_iommu_type1.allow_unsafe_interrupts=1"]),
        (None, false) => {
            "echo 0 > /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts (it was set at runtime)"
                .into()
        }
    };
    if f.allow_unsafe == Some(true) || in_conf.is_some() || on_cmdline {
        let source = match (f.allow_unsafe, in_conf) {
            (Some(true), _) => "is set (Y)".to_string(),
            (_, Some(l)) => format!("is configured in {}", l.file),
            _ => "is on the kernel command line".to_string(),
        };
        warn(
            id,
            false,
            format!("allow_unsafe_interrupts {source}: {risk}"),
            remove,
        )
    } else {
        ok(id, false, "allow_unsafe_interrupts is not set")
    }
}

/// `kvm ignore_msrs`: Windows guests (and NVIDIA's drivers in them) read MSRs KVM does not
/// emulate; with ignore_msrs=N the guest gets a #GP and often a blue screen.
pub(super) fn check_kvm_msrs(root: &HostRoot) -> Check {
    let id = "kvm_msrs";
    let Some(v) = crate::host::devfacts::module_param(root, "kvm", "ignore_msrs") else {
        return skipped(
            id,
            "kvm module parameters not found (kvm not loaded, or not captured)",
        );
    };
    let report = crate::host::devfacts::module_param(root, "kvm", "report_ignored_msrs");
    if v == "Y" || v == "1" {
        let note = if report.as_deref() == Some("Y") {
            " (report_ignored_msrs=Y fills the kernel log: set it to N to silence)"
        } else {
            ""
        };
        return ok(id, false, format!("kvm ignore_msrs=Y{note}"));
    }
    let mut c = ok(
        id,
        false,
        "kvm ignore_msrs=N (default): fine for most guests; a Windows guest that blue-screens at boot or when GeForce Experience starts needs it",
    );
    c.fix = Some(
        "only if a Windows guest crashes: echo 'options kvm ignore_msrs=1 report_ignored_msrs=0' > /etc/modprobe.d/kvm.conf, then reboot (or echo 1 > /sys/module/kvm/parameters/ignore_msrs)".into(),
    );
    c
}
