//! Module configuration: the vfio modules, vfio-pci options and GPU driver blacklists.

use std::collections::BTreeMap;

use crate::pci::device::Device;

use super::facts::*;
use super::*;

pub(super) fn check_vfio_modules(root: &HostRoot, f: &Facts) -> Check {
    let id = "vfio_modules";
    let mods = ["vfio", "vfio_iommu_type1", "vfio_pci"];
    let states: Vec<(&str, ModState)> = mods.iter().map(|m| (*m, module_state(root, m))).collect();
    let describe = |s: ModState| match s {
        ModState::Loaded => "loaded",
        ModState::BuiltIn => "built in",
        ModState::Loadable => "loadable",
        ModState::Missing => "missing",
        ModState::Unknown => "not loaded",
    };
    let summary: Vec<String> = states
        .iter()
        .map(|(m, s)| format!("{m} {}", describe(*s)))
        .collect();
    let summary = summary.join(", ");
    let missing: Vec<&str> = states
        .iter()
        .filter(|(_, s)| *s == ModState::Missing)
        .map(|(m, _)| *m)
        .collect();
    if !missing.is_empty() {
        return fail(
            id,
            format!("{summary}: the kernel has no {}", missing.join(", ")),
            "install this kernel's full module package (Ubuntu: linux-modules-extra-$(uname -r); \
             Debian/Proxmox/Fedora ship vfio in the kernel package), or build with CONFIG_VFIO_PCI",
        );
    }
    // vfio_virqfd: merged into vfio in 6.2; configs that still list it make modprobe fail.
    let new_kernel = f.version.is_some_and(|v| v >= (6, 2));
    let lists = [
        "etc/modules",
        "etc/initramfs-tools/modules",
        "etc/mkinitcpio.conf",
        "etc/modules-load.d/vfio.conf",
        "etc/modules-load.d/modules.conf",
        "etc/dracut.conf.d/vfio.conf",
    ];
    let virqfd = lists.iter().find(|rel| {
        root.read_file(rel).ok().flatten().is_some_and(|t| {
            t.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("vfio_virqfd"))
        })
    });
    if let (true, Some(rel)) = (new_kernel, virqfd) {
        return warn(
            id,
            true,
            format!("{summary}; /{rel} lists vfio_virqfd, which was merged into vfio in 6.2"),
            format!("remove vfio_virqfd from /{rel} (and rebuild the initramfs: update-initramfs -u)"),
        );
    }
    let unknown = states.iter().any(|(_, s)| *s == ModState::Unknown);
    if unknown {
        return warn(
            id,
            true,
            format!("{summary}; cannot tell whether the rest can be loaded (no /lib/modules/<release>)"),
            "modprobe vfio-pci   (it pulls in vfio and vfio_iommu_type1)",
        );
    }
    let virqfd_note = if new_kernel {
        "; vfio_virqfd not needed (merged into vfio since 6.2)"
    } else {
        ""
    };
    let all_loaded = states
        .iter()
        .all(|(_, s)| matches!(s, ModState::Loaded | ModState::BuiltIn));
    let mut c = ok(id, true, format!("{summary}{virqfd_note}"));
    if !all_loaded {
        c.fix = Some("nothing needed: vfiotool bind loads them; to load now: modprobe vfio-pci".into());
    }
    c
}

/// `vendor:device[:subvendor:subdevice[:class:mask]]` -> (vendor, device); `ffffffff` = any.
pub(super) fn parse_id(id: &str) -> Option<(Option<u16>, Option<u16>)> {
    let mut it = id.split(':');
    let num = |s: &str| -> Option<Option<u16>> {
        let v = u32::from_str_radix(s.trim(), 16).ok()?;
        Some(if v == 0xffff_ffff {
            None
        } else {
            u16::try_from(v).ok()
        })
    };
    Some((num(it.next()?)?, num(it.next()?)?))
}

pub(super) fn check_vfio_pci_options(f: &Facts) -> Check {
    let id = "vfio_pci_options";
    let mut ids: Vec<(String, String)> = Vec::new(); // (id, source)
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["options", m, rest @ ..] if norm(m) == "vfio_pci" => {
                for opt in rest {
                    if let Some(v) = opt.strip_prefix("ids=") {
                        ids.extend(
                            v.split(',')
                                .filter(|s| !s.is_empty())
                                .map(|s| (s.to_string(), l.file.clone())),
                        );
                    } else {
                        notes.push(format!("{opt} ({})", l.file));
                    }
                }
            }
            ["softdep", m, rest @ ..] if rest.iter().any(|x| norm(x) == "vfio_pci") => {
                notes.push(format!("softdep {m} pre: vfio-pci ({})", l.file));
            }
            _ => {}
        }
    }
    if let Some(v) = f
        .arg_value("vfio-pci.ids")
        .or_else(|| f.arg_value("vfio_pci.ids"))
    {
        ids.extend(
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| (s.to_string(), "/proc/cmdline".into())),
        );
    }
    let devices: Vec<&Device> = f.devices().collect();
    for (raw, source) in &ids {
        let Some((v, d)) = parse_id(raw) else {
            problems.push(format!("ids entry {raw:?} in {source} is not vendor:device"));
            continue;
        };
        let hits: Vec<&&Device> = devices
            .iter()
            .filter(|x| v.is_none_or(|v| v == x.vendor_id) && d.is_none_or(|d| d == x.device_id))
            .collect();
        match hits.len() {
            0 => problems.push(format!("ids={raw} ({source}) matches no device on this host")),
            1 => {
                let dev = hits[0];
                if dev.boot_vga == Some(true) {
                    problems.push(format!(
                        "ids={raw} ({source}) claims the boot GPU {}",
                        dev.address
                    ));
                }
                if let Some(drv) = dev.driver.as_deref().filter(|d| *d != "vfio-pci") {
                    problems.push(format!(
                        "ids={raw} ({source}) did not take {}: it is on {drv}",
                        dev.address
                    ));
                    fixes.push(format!(
                        "load vfio-pci before {drv}: `vfiotool persist {}` writes 'softdep {drv} pre: vfio-pci' into {} and the initramfs hook; then rebuild the initramfs",
                        dev.address,
                        crate::config::persist::MODPROBE_CONF
                    ));
                }
            }
            _ => {
                let addrs: Vec<String> = hits.iter().map(|h| h.address.to_string()).collect();
                problems.push(format!(
                    "ids={raw} ({source}) claims {} identical devices: {}",
                    hits.len(),
                    addrs.join(", ")
                ));
                fixes.push(
                    "to pass only one of identical devices, drop it from ids= and bind by address: vfiotool bind <address>"
                        .into(),
                );
            }
        }
    }
    let ids_text: Vec<String> = ids.iter().map(|(i, _)| i.clone()).collect();
    let mut message = if ids.is_empty() {
        "no boot-time vfio-pci ids= (runtime binding with vfiotool bind needs none)".to_string()
    } else {
        format!("vfio-pci ids={}", ids_text.join(","))
    };
    if !notes.is_empty() {
        message.push_str(&format!("; {}", notes.join("; ")));
    }
    if problems.is_empty() {
        ok(id, false, message)
    } else {
        crate::host::check::unique(&mut fixes);
        if fixes.is_empty() {
            fixes.push("correct the ids= list in the file named above".into());
        }
        warn(
            id,
            false,
            format!("{message}; {}", problems.join("; ")),
            fixes.join("\n"),
        )
    }
}

use crate::pci::drivers::{gpu_drivers as vendor_drivers, is_gpu_driver};

pub(super) fn check_blacklist(f: &Facts) -> Check {
    let id = "blacklist";
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        let m = match w.as_slice() {
            ["blacklist", m, ..] => Some(norm(m)),
            ["install", m, cmd, ..] if cmd.ends_with("/false") || cmd.ends_with("/true") => Some(norm(m)),
            _ => None,
        };
        if let Some(m) = m.filter(|m| is_gpu_driver(m)) {
            found.entry(m).or_insert_with(|| l.file.clone());
        }
    }
    if let Some(v) = f.arg_value("modprobe.blacklist") {
        for m in v.split(',').map(norm).filter(|m| is_gpu_driver(m)) {
            found.entry(m).or_insert_with(|| "/proc/cmdline".into());
        }
    }
    if found.is_empty() {
        return ok(id, false, "no GPU driver blacklisted");
    }
    let list: Vec<String> = found.iter().map(|(m, file)| format!("{m} ({file})")).collect();
    let boot_hit: Vec<String> = f
        .boot_gpus()
        .iter()
        .flat_map(|d| vendor_drivers(d.vendor_id).iter().map(move |m| (d, *m)))
        .filter(|(_, m)| found.contains_key(*m))
        .map(|(d, m)| format!("{m} also drives the boot GPU {}", d.address))
        .collect();
    if boot_hit.is_empty() {
        ok(id, false, format!("blacklisted GPU drivers: {}", list.join(", ")))
    } else {
        warn(
            id,
            false,
            format!(
                "blacklisted GPU drivers: {}; {}: the host console stays on the firmware framebuffer",
                list.join(", "),
                boot_hit.join("; ")
            ),
            "prefer binding by address (vfiotool bind) over blacklisting a driver the host GPU needs",
        )
    }
}
