//! The host GPU and its boot path: ACS override, firmware framebuffer, boot VGA, boot loader.

use crate::host::bootloader;
use crate::pci::device::Device;
use crate::pci::sysfs;

use super::facts::*;
use super::*;

pub(super) fn check_acs_override(f: &Facts) -> Check {
    let id = "acs_override";
    match f.cmdline.iter().find(|a| a.starts_with("pcie_acs_override=")) {
        Some(arg) => warn(
            id,
            false,
            format!(
                "{arg} is on the command line: IOMMU groups are split by pretending devices are isolated; \
                 devices in a fake group can still reach each other by peer-to-peer DMA, so a guest may \
                 read or corrupt host devices' memory (the groups vfiotool shows are not real isolation)"
            ),
            format!(
                "only if you accept the risk keep it; otherwise move the card to a CPU-attached slot and\n{}",
                f.boot.fix(&[], &[arg])
            ),
        ),
        None => ok(id, false, "no pcie_acs_override (groups are the hardware's)"),
    }
}

pub(super) fn check_framebuffer(root: &HostRoot, f: &Facts) -> Check {
    let id = "framebuffer";
    let mut holders: Vec<String> = Vec::new();
    let mut platform_bound = false;
    if let Some(iomem) = &f.iomem {
        for line in iomem.lines() {
            let name = line.split_once(" : ").map_or("", |(_, n)| n.trim());
            if let Some(fb) = crate::host::devfacts::FB_NAMES
                .iter()
                .find(|fb| name.starts_with(**fb))
            {
                holders.push(format!("{fb} in /proc/iomem"));
            }
        }
    }
    for drv in [
        "efi-framebuffer",
        "simple-framebuffer",
        "vesa-framebuffer",
        "simpledrm",
    ] {
        let dir = root.sysfs.join("bus/platform/drivers").join(drv);
        let bound = sysfs::dir_names(&dir)
            .unwrap_or_default()
            .into_iter()
            .any(|n| n.contains('.') && !matches!(n.as_str(), "bind" | "unbind" | "uevent" | "module"));
        if bound {
            holders.push(format!("platform driver {drv}"));
            platform_bound = true;
        }
    }
    holders.dedup();
    let released = [
        "initcall_blacklist=sysfb_init",
        "video=efifb:off",
        "video=simplefb:off",
        "video=vesafb:off",
    ]
    .into_iter()
    .find(|a| f.has_arg(a));
    let boot = f.boot_gpus();
    let boot_text: Vec<String> = boot.iter().map(|d| d.address.to_string()).collect();
    if holders.is_empty() {
        let note = released.map(|a| format!(" ({a} set)")).unwrap_or_default();
        return ok(id, false, format!("no firmware framebuffer holds a GPU{note}"));
    }
    // A DRM driver on the boot GPU removes the firmware framebuffer when it binds; what is left
    // in /proc/iomem then is only the resource name.
    let drm_took_over = boot.iter().find_map(|d| {
        d.driver
            .as_deref()
            .filter(|drv| crate::pci::drivers::DRM_DRIVERS.contains(drv))
    });
    if let (Some(drv), false) = (drm_took_over, platform_bound) {
        return ok(
            id,
            false,
            format!(
                "{drv} drives the boot GPU and replaced the firmware framebuffer ({})",
                holders.join(", ")
            ),
        );
    }
    if boot.is_empty() {
        return ok(
            id,
            false,
            format!(
                "firmware framebuffer active ({}), no boot GPU to pass",
                holders.join(", ")
            ),
        );
    }
    let passing_boot = boot.iter().any(|d| d.driver.as_deref() == Some("vfio-pci"));
    let msg = format!(
        "{} holds the boot GPU {}'s memory: passing that GPU fails with \"BAR 0: can't reserve\" until it is released{}",
        holders.join(", "),
        boot_text.join(", "),
        if passing_boot { " (it is bound to vfio-pci now)" } else { "" }
    );
    warn(
        id,
        false,
        msg,
        format!(
            "only if you pass the boot GPU: {}",
            f.boot.fix(&["initcall_blacklist=sysfb_init"], &[]).replacen(
                '\n',
                "  (kernels before 5.15: video=efifb:off)\n",
                1
            )
        ),
    )
}

pub(super) fn check_boot_vga(f: &Facts) -> Check {
    let id = "boot_vga";
    if let Some(e) = &f.devices_error {
        return warn(
            id,
            false,
            format!("cannot read the PCI devices: {e}"),
            "run as root, or check the sysfs root",
        );
    }
    let gpus: Vec<&Device> = f.devices().filter(|d| d.is_display()).collect();
    if gpus.is_empty() {
        return ok(id, false, "no display controller found");
    }
    let boot = f.boot_gpus();
    let describe = |d: &Device| format!("{} (driver {})", d.address, d.driver.as_deref().unwrap_or("none"));
    let others: Vec<String> = gpus
        .iter()
        .filter(|d| d.boot_vga != Some(true))
        .map(|d| describe(d))
        .collect();
    let boot_text: Vec<String> = boot.iter().map(|d| describe(d)).collect();
    let mut msg = match boot_text.is_empty() {
        true => "no GPU has boot_vga=1".to_string(),
        false => format!("boot GPU {}", boot_text.join(", ")),
    };
    if !others.is_empty() {
        msg.push_str(&format!("; other GPUs: {}", others.join(", ")));
    }
    if others.is_empty() && !boot.is_empty() {
        warn(
            id,
            false,
            format!("{msg}: the only GPU is the boot GPU, so passing it leaves the host headless"),
            "pass it only with a clean ROM (vfiotool rom dump) and the framebuffer released (see framebuffer), \
             or make another GPU primary in the firmware setup",
        )
    } else {
        ok(id, false, msg)
    }
}

pub(super) fn check_bootloader(f: &Facts) -> Check {
    let id = "bootloader";
    let b = &f.boot;
    let Some(config) = &b.config else {
        return warn(
            id,
            false,
            "no GRUB, systemd-boot, proxmox-boot-tool or kernelstub configuration found",
            "edit your boot loader's kernel command line by hand; vfiotool prints the arguments to add",
        );
    };
    // Every argument the configuration sets is compared with what the running kernel got
    // (exact text: a changed value counts as pending too). Then the VFIO-related keys the
    // kernel got but the configuration no longer sets: removed, but still active until a reboot.
    let pending: Vec<&str> = b
        .configured_args
        .iter()
        .map(String::as_str)
        // `$GRUB_CMDLINE_LINUX_DEFAULT` and the like are expanded by grub-mkconfig, not here.
        .filter(|a| !a.contains('$') && !f.has_arg(a))
        .collect();
    const KEYS: [&str; 12] = [
        "intel_iommu",
        "amd_iommu",
        "iommu",
        "pcie_acs_override",
        "vfio-pci.ids",
        "vfio_pci.ids",
        "video",
        "initcall_blacklist",
        "intremap",
        "modprobe.blacklist",
        "kvm.ignore_msrs",
        "vfio_iommu_type1.allow_unsafe_interrupts",
    ];
    let key = |a: &str| a.split('=').next().unwrap_or_default().to_string();
    let removed: Vec<&str> = f
        .cmdline
        .iter()
        .map(String::as_str)
        .filter(|a| KEYS.contains(&key(a).as_str()) && !b.configured_args.iter().any(|c| c == a))
        .filter(|a| !b.configured_args.iter().any(|c| key(c) == key(a)))
        .collect();
    if pending.is_empty() && removed.is_empty() {
        return ok(
            id,
            false,
            format!(
                "{} (/{config}): the running kernel got all {} configured argument(s)",
                b.name(),
                b.configured_args.len()
            ),
        );
    }
    let apply = match b.kind {
        bootloader::Kind::Grub => "update-grub (Fedora: grub2-mkconfig -o /boot/grub2/grub.cfg), then reboot",
        bootloader::Kind::ProxmoxBootTool => "proxmox-boot-tool refresh, then reboot",
        bootloader::Kind::Kernelstub => "reboot (kernelstub writes the loader entry itself)",
        bootloader::Kind::SystemdBoot => {
            "kernel-install add $(uname -r) /lib/modules/$(uname -r)/vmlinuz, then reboot"
        }
        bootloader::Kind::Unknown => "regenerate the boot entries, then reboot",
    };
    let mut parts = Vec::new();
    if !pending.is_empty() {
        parts.push(format!(
            "configures {} but the running kernel did not get it",
            pending.join(" ")
        ));
    }
    if !removed.is_empty() {
        parts.push(format!(
            "no longer sets {} but the running kernel still has it",
            removed.join(" ")
        ));
    }
    warn(
        id,
        false,
        format!("{} (/{config}) {}", b.name(), parts.join("; ")),
        apply,
    )
}
