//! The message formats `explain` recognises, one row per format, each with the software and
//! source file that prints it. The regexes are written from those formats (the printf strings),
//! not from one sample log, so that they match every version that prints the same words: the
//! numbers, addresses and errno texts are the variable parts.
//!
//! Sources read (docs/explain.md lists them with the formats):
//! - Linux: drivers/vfio/vfio_iommu_type1.c, drivers/vfio/pci/vfio_pci_core.c,
//!   drivers/iommu/intel/iommu.c, drivers/pci/pci.c, drivers/pci/rom.c, drivers/pci/setup-res.c,
//!   drivers/base/dd.c;
//! - QEMU: hw/vfio/common.c / container.c (group and container setup, DMA map), hw/vfio/pci.c
//!   (reset, ROM), hw/vfio/region.c, hw/pci/pci.c (romfile);
//! - libvirt: src/util/virpci.c (reset), src/hypervisor/virhostdev.c (device in use),
//!   src/qemu/qemu_capabilities.c / qemu_hostdev.c (no IOMMU), tools/virt-host-validate-common.c;
//! - Proxmox: qemu-server PVE/QemuServer/PCI.pm, pve-manager's GUI IOMMU warning;
//! - vendor-reset (AMD reset quirk module): src/amd/*.c;
//! - DPDK EAL (lib/eal/linux/eal_vfio.c), which users run into on the same hosts.

/// A cause `explain` can name. The order is the ranking: a cause earlier in the list makes the
/// later ones happen (no IOMMU -> no group -> nothing opens), so it is reported first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseId {
    NoIommu,
    NoInterruptRemapping,
    Rmrr,
    GroupNotViable,
    VfioNotBound,
    DeviceBusy,
    BarReserve,
    DmaMapMemory,
    ResetFailed,
    RomProblem,
}

impl CauseId {
    pub const ALL: [CauseId; 10] = [
        CauseId::NoIommu,
        CauseId::NoInterruptRemapping,
        CauseId::Rmrr,
        CauseId::GroupNotViable,
        CauseId::VfioNotBound,
        CauseId::DeviceBusy,
        CauseId::BarReserve,
        CauseId::DmaMapMemory,
        CauseId::ResetFailed,
        CauseId::RomProblem,
    ];

    /// The stable id in `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseId::NoIommu => "no_iommu",
            CauseId::NoInterruptRemapping => "no_interrupt_remapping",
            CauseId::Rmrr => "rmrr",
            CauseId::GroupNotViable => "group_not_viable",
            CauseId::VfioNotBound => "vfio_not_bound",
            CauseId::DeviceBusy => "device_busy",
            CauseId::BarReserve => "bar_reserve",
            CauseId::DmaMapMemory => "dma_map_memory",
            CauseId::ResetFailed => "reset_failed",
            CauseId::RomProblem => "rom_problem",
        }
    }
}

/// The software whose message format a pattern models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Kernel,
    Qemu,
    Libvirt,
    Proxmox,
    VendorReset,
    Dpdk,
}

/// One message format.
pub struct Pattern {
    pub cause: CauseId,
    pub source: Source,
    /// The format as the source prints it (for docs and the closing note).
    pub format: &'static str,
    pub regex: &'static str,
    /// The message also has another cause (EPERM from attaching a group is interrupt
    /// remapping or RMRR): a stronger match of another cause wins over it.
    pub ambiguous: bool,
}

const fn p(cause: CauseId, source: Source, format: &'static str, regex: &'static str) -> Pattern {
    Pattern {
        cause,
        source,
        format,
        regex,
        ambiguous: false,
    }
}

use CauseId::*;
use Source::*;

/// Every format, in no particular order (ranking is by [`CauseId`]).
pub const PATTERNS: &[Pattern] = &[
    // ---- no_iommu
    p(NoIommu, Proxmox, "cannot prepare PCI pass-through, IOMMU not present (qemu-server PVE/QemuServer/PCI.pm prepare_pci_device)",
      r"(?i)cannot prepare PCI pass-?through, IOMMU not present"),
    p(NoIommu, Proxmox, "No IOMMU detected, please activate it.See Documentation for further information. (pve-manager PCI selector)",
      r"(?i)No IOMMU detected"),
    p(NoIommu, Qemu, "vfio %s: no iommu_group found: %m (hw/vfio: vfio_device_get_name / vfio_base_device_init)",
      r"(?i)no iommu_group found"),
    p(NoIommu, Libvirt, "unsupported configuration: host doesn't support passthrough of host PCI devices (src/qemu/qemu_hostdev.c)",
      r"(?i)host doesn't support passthrough of host PCI devices"),
    p(NoIommu, Libvirt, "VFIO device assignment is currently not supported on this system (src/qemu/qemu_hostdev.c qemuHostdevPreparePCIDevicesCheckSupport: no IOMMU groups)",
      r"(?i)VFIO device assignment is currently not supported on this system"),
    p(NoIommu, Libvirt, "No ACPI DMAR table found, IOMMU either disabled in BIOS or not supported by this hardware platform (tools/virt-host-validate-common.c)",
      r"(?i)No ACPI (?:DMAR|IVRS) table found, IOMMU either disabled"),
    p(NoIommu, Libvirt, "IOMMU appears to be disabled in kernel. Add intel_iommu=on to kernel cmdline arguments (tools/virt-host-validate-common.c)",
      r"(?i)IOMMU appears to be disabled in kernel"),
    p(NoIommu, Kernel, "vfio-pci: probe of %s failed with error -22 (drivers/base/dd.c; vfio-pci refuses a device without an IOMMU group)",
      r"(?i)vfio[-_]pci:? probe of \S+ failed with error -22"),
    // ---- no_interrupt_remapping
    p(NoInterruptRemapping, Kernel, "%s: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform (drivers/vfio/vfio_iommu_type1.c)",
      r"(?i)No interrupt remapping (?:\S+ )*?support"),
    Pattern {
        ambiguous: true,
        ..p(NoInterruptRemapping, Qemu, "failed to setup container for group %d: Failed to set iommu for container: Operation not permitted (hw/vfio/container.c vfio_set_iommu, errno EPERM from VFIO_SET_IOMMU)",
            r"(?i)failed to set iommu for container: Operation not permitted")
    },
    // ---- rmrr
    p(Rmrr, Kernel, "Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor. (drivers/iommu/intel/iommu.c)",
      r"(?i)ineligible for IOMMU domain attach due to platform RMRR"),
    // ---- group_not_viable
    p(GroupNotViable, Qemu, "group %d is not viable / Please ensure all devices within the iommu_group are bound to their vfio bus driver. (hw/vfio/container.c vfio_get_group)",
      r"(?i)group (?P<group>\d+) is not viable"),
    p(GroupNotViable, Qemu, "Please ensure all devices within the iommu_group are bound to their vfio bus driver. (the hint QEMU appends; libvirt quotes it)",
      r"(?i)ensure all devices within the iommu_group are bound"),
    p(GroupNotViable, Dpdk, "%s VFIO group is not viable! Not all devices in IOMMU group bound to VFIO or unbound (lib/eal/linux/eal_vfio.c)",
      r"(?i)VFIO group is not viable"),
    p(GroupNotViable, Proxmox, "can't unbind/bind PCI group to VFIO '%s' (qemu-server PVE/QemuServer/PCI.pm)",
      r"(?i)can't unbind/bind PCI group to VFIO"),
    // ---- vfio_not_bound
    p(VfioNotBound, Qemu, "vfio %s: failed to open /dev/vfio/%d: No such file or directory (hw/vfio/container.c vfio_get_group)",
      r"(?i)failed to open /dev/vfio/(?P<group>\d+): No such file or directory"),
    p(VfioNotBound, Qemu, "vfio: error, no vfio driver bound / Verify all devices in group %d are bound to vfio-<bus> or pci-stub and not already in use (hw/vfio, older QEMU)",
      r"(?i)Verify all devices in group (?P<group>\d+) are bound to vfio"),
    // ---- device_busy
    p(DeviceBusy, Qemu, "vfio %s: failed to open /dev/vfio/%d: Device or resource busy (hw/vfio/container.c vfio_get_group: another process holds the group)",
      r"(?i)(?:failed to open|error opening|cannot open) /dev/vfio/(?P<group>\d+)\S*:? .*(?:Device or resource busy|Errno 16)"),
    p(DeviceBusy, Dpdk, "Failed to open /dev/vfio/%d: [Errno 16] Device or resource busy (tools that open the group themselves)",
      r"(?i)Device or resource busy:? '?/dev/vfio/(?P<group>\d+)"),
    p(DeviceBusy, Qemu, "vfio %s: error getting device from group %d: Device or resource busy (hw/vfio: VFIO_GROUP_GET_DEVICE_FD)",
      r"(?i)error getting device from group (?P<group>\d+): Device or resource busy"),
    p(DeviceBusy, Libvirt, "Requested operation is not valid: PCI device %1$s is in use by driver %2$s, domain %3$s (src/hypervisor/virhostdev.c)",
      r"(?i)PCI device (?P<addr>\S+) is in use by driver (?P<driver>[^,\s]+), domain (?P<domain>\S+)"),
    p(DeviceBusy, Proxmox, "PCI device '%s' already in use by VMID '%d' (qemu-server PVE/QemuServer/PCI.pm reservation)",
      r"(?i)PCI device '?(?P<addr>[0-9a-f:.]+)'? already in use by VMID '?(?P<vmid>\d+)"),
    p(DeviceBusy, Kernel, "vfio-pci %s: No device request channel registered, blocked until released by user (drivers/vfio/pci/vfio_pci_core.c: an unbind waits for the VM)",
      r"(?i)blocked until released by user"),
    p(DeviceBusy, Kernel, "vfio-pci %s: Relaying device request to user (#%u) (drivers/vfio/pci/vfio_pci_core.c)",
      r"(?i)Relaying device request to user"),
    // ---- bar_reserve
    p(BarReserve, Kernel, "BAR %d: can't reserve %pR (drivers/pci/pci.c __pci_request_region; 6.x also prints BAR %d %pR: can't reserve)",
      r"(?i)BAR (?P<bar>\d+)(?::| \[[^\]]*\]:) can't reserve"),
    p(BarReserve, Kernel, "device not available (can't reserve %pR) (drivers/pci/setup-res.c pci_enable_resources)",
      r"(?i)device not available \(can't reserve"),
    p(BarReserve, Qemu, "vfio_region_write(%s:region%d+0x%x, 0x%x,%d) failed: Device or resource busy (hw/vfio/region.c: the BAR is held by another driver, usually the firmware framebuffer)",
      r"(?i)vfio_region_(?:write|read)\([^)]*\) failed: Device or resource busy"),
    // ---- dma_map_memory
    p(DmaMapMemory, Qemu, "vfio_dma_map(%p, 0x%x, 0x%x, %p) = -12 (Cannot allocate memory) (hw/vfio/container.c)",
      r"(?i)vfio_dma_map\([^)]*\) = -12"),
    p(DmaMapMemory, Qemu, "VFIO_MAP_DMA failed: Cannot allocate memory (hw/vfio/container.c vfio_legacy_dma_map)",
      r"(?i)VFIO_MAP_DMA(?: failed)?: (?:-12|Cannot allocate memory)"),
    p(DmaMapMemory, Kernel, "%s: Task %s (%d) RLIMIT_MEMLOCK (%ld) exceeded (drivers/vfio/vfio_iommu_type1.c vfio_pin_pages_remote)",
      r"(?i)RLIMIT_MEMLOCK \((?P<limit>\d+)\) exceeded"),
    // ---- reset_failed
    p(ResetFailed, Kernel, "Unable to change power state from %s to D0, device inaccessible (drivers/pci/pci.c pci_power_up)",
      r"(?i)Unable to change power state from (?P<state>D3cold|D3hot) to D0, device inaccessible"),
    p(ResetFailed, Kernel, "not ready %dms after %s; giving up (drivers/pci/pci.c pci_dev_wait)",
      r"(?i)not ready \d+ms after [^;]+; giving up"),
    p(ResetFailed, Kernel, "Unsupported reset method '%s' (drivers/pci/pci-sysfs.c reset_method_store)",
      r"(?i)Unsupported reset method '(?P<method>[^']*)'"),
    p(ResetFailed, Kernel, "vfio_bar_restore: reset recovery - restoring BARs (drivers/vfio/pci/vfio_pci_config.c: the device lost its config space)",
      r"(?i)reset recovery - restoring BARs"),
    p(ResetFailed, Qemu, "vfio: Cannot reset device %s, depends on group %d which is not owned. / no available reset mechanism. (hw/vfio/pci.c)",
      r"(?i)Cannot reset device (?P<addr>[^,\s]+),"),
    p(ResetFailed, Qemu, "vfio: Unable to power on device, stuck in D3 (hw/vfio/pci.c vfio_pci_pre_reset)",
      r"(?i)Unable to power on device, stuck in D3"),
    p(ResetFailed, Libvirt, "Unable to reset PCI device %1$s: %2$s (src/util/virpci.c virPCIDeviceReset)",
      r"(?i)Unable to reset PCI device (?P<addr>[^:\s]+(?::[^:\s]+){0,2})"),
    p(ResetFailed, Libvirt, "Active %1$s devices on bus with %2$s, not doing bus reset (src/util/virpci.c virPCIDeviceTrySecondaryBusReset)",
      r"(?i)devices on bus with (?P<addr>\S+), not doing bus reset"),
    p(ResetFailed, VendorReset, "AMD_%s: failed to reset device (vendor-reset src/amd/*.c)",
      r"(?i)AMD_\w+: failed to reset device"),
    // ---- rom_problem
    p(RomProblem, Kernel, "Invalid PCI ROM header signature: expecting 0xaa55, got 0x%04x (drivers/pci/rom.c pci_get_rom_size)",
      r"(?i)Invalid PCI ROM header signature: expecting 0xaa55, got (?P<got>0x[0-9a-f]+)"),
    p(RomProblem, Qemu, "vfio-pci: Cannot read device rom at %s / Device option ROM contents are probably invalid (check dmesg). (hw/vfio/pci.c vfio_pci_size_rom)",
      r"(?i)Cannot read device rom at (?P<addr>\S+)"),
    p(RomProblem, Qemu, "failed to find romfile \"%s\" (hw/pci/pci.c pci_add_option_rom)",
      r#"(?i)failed to find romfile "(?P<romfile>[^"]*)""#),
    p(RomProblem, Qemu, "romfile \"%s\" is empty / failed to load romfile \"%s\" (hw/pci/pci.c)",
      r#"(?i)(?:romfile "(?P<romfile>[^"]*)" is empty|failed to load romfile)"#),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_a_pattern_and_every_regex_compiles() {
        for id in CauseId::ALL {
            assert!(PATTERNS.iter().any(|p| p.cause == id), "{}", id.as_str());
        }
        for p in PATTERNS {
            regex::Regex::new(p.regex).unwrap_or_else(|e| panic!("{}: {e}", p.regex));
        }
    }
}
