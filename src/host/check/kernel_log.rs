//! What the kernel log shows, read the way the guides have users `dmesg | grep` by hand:
//! IOMMU faults, interrupt remapping (off, or in xAPIC mode because the BIOS opts out of
//! x2APIC), BARs vfio-pci could not reserve, an ACS override the kernel ignores, RMRR-locked
//! devices. Message formats (Linux): drivers/iommu/intel/dmar.c (`DMAR: [DMA Read] Request device
//! [..] fault addr`), drivers/iommu/amd/iommu.c (`AMD-Vi: Event logged [IO_PAGE_FAULT ...]`),
//! drivers/vfio/vfio_iommu_type1.c (`No interrupt remapping support.`),
//! drivers/iommu/intel/irq_remapping.c (`DMAR-IR: Enabled IRQ remapping in %s mode`, `x2apic is
//! disabled because BIOS sets x2apic opt out bit.`), arch/x86/kernel/apic/apic.c (`Not enabling
//! interrupt remapping`), drivers/iommu/amd/init.c (`AMD-Vi: Interrupt remapping enabled`),
//! drivers/pci/pci.c (`BAR %d: can't reserve %pR`), init/main.c (`Unknown kernel command line
//! parameters "%s", will be passed to user space.`), the ACS override patch (`PCIe ACS overrides
//! enabled`), drivers/iommu/intel/iommu.c (`Device is ineligible for IOMMU domain attach due to
//! platform RMRR requirement`).

use std::sync::OnceLock;

use regex::Regex;

use crate::host::kmsg::KernelLog;

use super::facts::*;
use super::*;

/// Kernel log checks: `kernel_log` (could it be read) and one per finding.
pub(super) fn checks(f: &Facts) -> Vec<Check> {
    let lines = match &f.klog {
        KernelLog::Read {
            lines,
            source,
            truncated,
            ..
        } => {
            let mut c = ok(
                "kernel_log",
                false,
                format!(
                    "{} kernel log lines read from {source}{}",
                    lines.len(),
                    if *truncated {
                        " (bounded: the oldest are missing)"
                    } else {
                        ""
                    }
                ),
            );
            if lines.is_empty() {
                c = warn(
                    "kernel_log",
                    false,
                    format!("{source} is empty"),
                    "capture it again as root",
                );
            }
            let mut out = vec![c];
            out.extend(findings(f, lines));
            return out;
        }
        KernelLog::Unavailable(why) => why,
    };
    let mut out = vec![warn(
        "kernel_log",
        false,
        format!("kernel log not read: {lines}"),
        "run vfiotool check as root (or capture as root) to add what the kernel log shows",
    )];
    for id in LOG_IDS {
        out.push(skipped(id, "the kernel log was not read"));
    }
    out
}

const LOG_IDS: [&str; 5] = [
    "iommu_faults",
    "log_interrupt_remapping",
    "log_bar_reserve",
    "log_acs_override",
    "log_rmrr",
];

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("constant regex"))
}

/// The first PCI address in a line (`0000:01:00.0`, `01:00.0`, `[00:02.0]`, `[0x00:0x02.0]`).
fn address(line: &str) -> Option<String> {
    static A: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &A,
        r"(?i)\b(?:([0-9a-f]{4}):)?(?:0x)?([0-9a-f]{2}):(?:0x)?([0-9a-f]{2})\.([0-7])\b",
    );
    let c = r.captures(line)?;
    Some(format!(
        "{}:{}:{}.{}",
        c.get(1).map_or("0000", |m| m.as_str()),
        &c[2],
        &c[3],
        &c[4]
    ))
}

fn findings(f: &Facts, lines: &[String]) -> Vec<Check> {
    vec![
        iommu_faults(lines),
        interrupt_remapping(f, lines),
        bar_reserve(f, lines),
        acs_override(f, lines),
        rmrr(lines),
    ]
}

/// Up to `n` distinct items, then "and N more".
fn list(items: &[String], n: usize) -> String {
    let mut v: Vec<String> = items.iter().take(n).cloned().collect();
    if items.len() > n {
        v.push(format!("and {} more", items.len() - n));
    }
    v.join(", ")
}

fn iommu_faults(lines: &[String]) -> Check {
    static DMAR: OnceLock<Regex> = OnceLock::new();
    static AMD: OnceLock<Regex> = OnceLock::new();
    let dmar = re(
        &DMAR,
        r"DMAR: ?\[(?:DMA (?:Read|Write)|INTR-REMAP)[^\]]*\] Request device \[",
    );
    let amd = re(
        &AMD,
        r"AMD-Vi: Event logged \[(IO_PAGE_FAULT|INVALID_DEVICE_REQUEST|ILLEGAL_DEV_TABLE_ENTRY|PAGE_TAB_HARDWARE_ERROR|INVALID_PPR_REQUEST)",
    );
    let hits: Vec<&String> = lines
        .iter()
        .filter(|l| dmar.is_match(l) || amd.is_match(l))
        .collect();
    if hits.is_empty() {
        return ok("iommu_faults", false, "no DMAR/AMD-Vi fault in the kernel log");
    }
    let mut devs: Vec<String> = Vec::new();
    for h in &hits {
        // The faulting device is inside "Request device [..]" or "device=..": the first
        // address after the marker, else the first in the line.
        let tail = h
            .split("Request device")
            .nth(1)
            .or_else(|| h.split("device=").nth(1));
        if let Some(a) = tail.and_then(address).or_else(|| address(h)) {
            if !devs.contains(&a) {
                devs.push(a);
            }
        }
    }
    warn(
        "iommu_faults",
        false,
        format!(
            "{} IOMMU fault line(s) for {}; first: {}",
            hits.len(),
            if devs.is_empty() { "an unnamed device".into() } else { list(&devs, 4) },
            hits[0]
        ),
        "a device did DMA to an address its IOMMU domain does not map: if it is passed through, the guest driver or the VM's memory map is at fault (restart the VM, update the guest driver); \
         if it is a host device, try iommu=pt, update the firmware, or report the driver",
    )
}

fn interrupt_remapping(f: &Facts, lines: &[String]) -> Check {
    let id = "log_interrupt_remapping";
    let has = |s: &str| lines.iter().find(|l| l.contains(s));
    let enabled = has("Enabled IRQ remapping in").or_else(|| has("Interrupt remapping enabled"));
    let not_enabled = has("Not enabling interrupt remapping")
        .or_else(|| has("Failed to enable irq remapping"))
        .or_else(|| has("Failed to prepare irq remapping"));
    let optout = has("x2apic is disabled because BIOS sets x2apic opt out bit");
    let optout_old = has("requested that x2apic be disabled");
    // vfio_iommu_type1 refused a group for want of remapping (drivers/vfio/vfio_iommu_type1.c).
    if let Some(l) = has("No interrupt remapping support") {
        let unsafe_set = f.allow_unsafe == Some(true);
        return warn(
            id,
            false,
            format!(
                "VFIO refused a group because the platform has no interrupt remapping: {l}{}",
                if unsafe_set { " (allow_unsafe_interrupts is set now)" } else { "" }
            ),
            "enable interrupt remapping (VT-d / AMD IOMMU, x2APIC) in the firmware setup and remove intremap=off if set; see the interrupt_remapping check",
        );
    }
    if let Some(l) = not_enabled {
        let arg = ["intremap=off", "nointremap"].into_iter().find(|a| f.has_arg(a));
        let fix = match arg {
            Some(a) => f.boot.fix(&[], &[a]),
            None => {
                "enable interrupt remapping (VT-d/IOMMU) in the firmware setup, update the firmware".into()
            }
        };
        return warn(
            id,
            false,
            format!("the kernel did not enable interrupt remapping: {l}"),
            fix,
        );
    }
    if let Some(l) = optout.or(optout_old) {
        let mode = enabled.map(|e| format!("; {e}")).unwrap_or_default();
        return warn(
            id,
            false,
            format!("the BIOS opts out of x2APIC ({l}){mode}: remapping runs in xAPIC mode, which VFIO accepts, but x2APIC is off"),
            format!(
                "only if you need x2APIC (many CPUs, posted interrupts): update the firmware, or\n{}",
                f.boot.fix(&["intremap=no_x2apic_optout"], &[])
            ),
        );
    }
    match enabled {
        Some(l) => ok(id, false, format!("the kernel enabled interrupt remapping: {l}")),
        None if f.iommu_active() => ok(
            id,
            false,
            "no interrupt remapping message in the log (it may have scrolled out); the interrupt_remapping check reads /proc/interrupts",
        ),
        None => ok(id, false, "no interrupt remapping message (the IOMMU is off)"),
    }
}

fn bar_reserve(f: &Facts, lines: &[String]) -> Check {
    static BAR: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &BAR,
        r"(?i)BAR \d+(?::| \[[^\]]*\]:) can't reserve|device not available \(can't reserve",
    );
    let hits: Vec<&String> = lines.iter().filter(|l| r.is_match(l)).collect();
    if hits.is_empty() {
        return ok(
            "log_bar_reserve",
            false,
            "no \"can't reserve\" BAR in the kernel log",
        );
    }
    let mut devs: Vec<String> = hits.iter().filter_map(|l| address(l)).collect();
    devs.dedup();
    warn(
        "log_bar_reserve",
        false,
        format!("a driver could not reserve a BAR of {}: {}", list(&devs, 4), hits[0]),
        format!(
            "something else (the firmware framebuffer of the boot GPU) holds that memory; release it at boot:\n{}",
            f.boot.fix(&["initcall_blacklist=sysfb_init"], &[])
        ),
    )
}

fn acs_override(f: &Facts, lines: &[String]) -> Check {
    let id = "log_acs_override";
    let arg = f.cmdline.iter().find(|a| a.starts_with("pcie_acs_override="));
    let applied = lines.iter().find(|l| l.contains("PCIe ACS overrides enabled"));
    let ignored = lines
        .iter()
        .find(|l| l.contains("Unknown kernel command line parameters") && l.contains("pcie_acs_override="));
    match (arg, applied, ignored) {
        (_, _, Some(l)) => warn(
            id,
            false,
            format!("this kernel has no ACS override patch and passes pcie_acs_override= to user space ({l}): the IOMMU groups are the hardware's"),
            format!(
                "use a kernel with the patch (Proxmox, linux-zen, Liquorix) or remove the argument:\n{}",
                f.boot.fix(&[], &[arg.map_or("pcie_acs_override=...", |a| a.as_str())])
            ),
        ),
        (Some(a), Some(l), None) => ok(id, false, format!("{a} is applied: {l}")),
        (Some(a), None, None) => ok(id, false, format!("{a} is set; the log does not say whether this kernel applied it")),
        (None, Some(l), None) => ok(id, false, format!("ACS override active: {l}")),
        (None, None, None) => ok(id, false, "no ACS override"),
    }
}

fn rmrr(lines: &[String]) -> Check {
    let hits: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ineligible for IOMMU domain attach due to platform RMRR"))
        .collect();
    if hits.is_empty() {
        return ok("log_rmrr", false, "no RMRR-locked device in the kernel log");
    }
    let mut devs: Vec<String> = hits.iter().filter_map(|l| address(l)).collect();
    devs.dedup();
    warn(
        "log_rmrr",
        false,
        format!("RMRR-locked: {} cannot be given to a VM (the firmware reserves memory for it)", list(&devs, 4)),
        "move the card to another slot, turn off the firmware feature that reserves it (HPE: \"HP Shared Memory features\"), or run a kernel with the relax-intel-rmrr patch",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_fault_lines() {
        assert_eq!(
            address("DMAR: [DMA Read NO_PASID] Request device [0x00:0x02.0] fault addr 0x9c000000"),
            Some("0000:00:02.0".into())
        );
        assert_eq!(
            address("vfio-pci 0000:0a:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0x0 flags=0x0020]"),
            Some("0000:0a:00.0".into())
        );
    }
}
