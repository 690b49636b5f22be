//! Boot-time module configuration as the host actually uses it: is the initramfs older than the
//! modprobe.d files it should carry, does a device still sit on a driver the configuration
//! blacklists or hands to vfio-pci, and do the blacklist lines do anything (modprobe compares
//! module names literally: kmod's config parser stores `blacklist NAME` as a plain string and
//! `modprobe` looks the module's name up in that list; there is no glob).

use std::path::Path;
use std::time::SystemTime;

use crate::pci::device::Device;
use crate::pci::modules::ModuleAliases;
use crate::pci::sysfs;

use super::facts::*;
use super::*;

/// The tool that builds the initramfs here, by the files it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    InitramfsTools,
    Dracut,
    Mkinitcpio,
    Unknown,
}

fn tool(root: &HostRoot) -> Tool {
    if root.path("etc/initramfs-tools").is_dir() {
        Tool::InitramfsTools
    } else if root.path("etc/mkinitcpio.conf").is_file() {
        Tool::Mkinitcpio
    } else if root.path("etc/dracut.conf.d").is_dir() || root.path("etc/dracut.conf").is_file() {
        Tool::Dracut
    } else {
        Tool::Unknown
    }
}

/// The command that rebuilds the initramfs on this host.
pub(super) fn rebuild_command(root: &HostRoot) -> String {
    let proxmox = root.path("etc/kernel/proxmox-boot-uuids").exists();
    match tool(root) {
        Tool::InitramfsTools if proxmox => "update-initramfs -u -k all && proxmox-boot-tool refresh".into(),
        Tool::InitramfsTools => "update-initramfs -u -k all".into(),
        Tool::Dracut => "dracut -f --regenerate-all".into(),
        Tool::Mkinitcpio => "mkinitcpio -P".into(),
        Tool::Unknown => {
            "rebuild the initramfs (Debian/Ubuntu/Proxmox: update-initramfs -u -k all; Fedora/RHEL: dracut -f --regenerate-all; Arch: mkinitcpio -P)".into()
        }
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// The running kernel's initramfs: (path relative to the root, mtime).
fn initramfs(root: &HostRoot, release: &str) -> Option<(String, SystemTime)> {
    [
        format!("boot/initrd.img-{release}"),
        format!("boot/initramfs-{release}.img"),
        format!("boot/initrd-{release}"),
        "boot/initramfs-linux.img".to_string(),
    ]
    .into_iter()
    .find_map(|rel| Some((rel.clone(), mtime(&root.path(&rel))?)))
}

/// The configuration files the initramfs carries, with their mtimes.
fn inputs(root: &HostRoot) -> Vec<(String, SystemTime)> {
    let mut out = Vec::new();
    for dir in ["etc/modprobe.d", "etc/dracut.conf.d"] {
        for name in sysfs::dir_names(&root.path(dir)).unwrap_or_default() {
            if name.ends_with(".conf") {
                let rel = format!("{dir}/{name}");
                if let Some(t) = mtime(&root.path(&rel)) {
                    out.push((rel, t));
                }
            }
        }
    }
    for rel in [
        "etc/initramfs-tools/modules",
        "etc/mkinitcpio.conf",
        "etc/modules",
    ] {
        if let Some(t) = mtime(&root.path(rel)) {
            out.push((rel.to_string(), t));
        }
    }
    out
}

/// Files newer than the initramfs (`None` when no initramfs was found).
fn newer_inputs(root: &HostRoot, f: &Facts) -> Option<(String, Vec<String>)> {
    let (path, built) = initramfs(root, f.release.as_deref()?)?;
    let newer = inputs(root)
        .into_iter()
        .filter(|(_, t)| *t > built)
        .map(|(rel, _)| format!("/{rel}"))
        .collect();
    Some((format!("/{path}"), newer))
}

pub(super) fn check_initramfs(root: &HostRoot, f: &Facts) -> Check {
    let id = "initramfs";
    let Some(release) = f.release.as_deref() else {
        return skipped(id, "kernel release unknown (/proc/sys/kernel/osrelease)");
    };
    let Some((path, newer)) = newer_inputs(root, f) else {
        return skipped(id, format!("no initramfs for {release} under /boot"));
    };
    if newer.is_empty() {
        return ok(
            id,
            false,
            format!("{path} is newer than the modprobe.d and module files it carries"),
        );
    }
    warn(
        id,
        false,
        format!(
            "{path} is older than {}: the blacklists and vfio-pci options in them are not in the initramfs, so drivers load at boot as before",
            newer.join(", ")
        ),
        format!("{}\nreboot", rebuild_command(root)),
    )
}

/// Modules the configuration keeps away: name -> the file that says so.
fn blacklisted(f: &Facts) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        let m = match w.as_slice() {
            ["blacklist", m, ..] => norm(m),
            ["install", m, cmd, ..] if cmd.ends_with("/false") || cmd.ends_with("/true") => norm(m),
            _ => continue,
        };
        if !out.iter().any(|(x, _)| *x == m) {
            out.push((m, l.file.clone()));
        }
    }
    if let Some(v) = f.arg_value("modprobe.blacklist") {
        for m in v.split(',').map(norm) {
            if !out.iter().any(|(x, _)| *x == m) {
                out.push((m, "/proc/cmdline".into()));
            }
        }
    }
    out
}

/// vfio-pci `ids=` entries: (vendor, device, file).
fn vfio_ids(f: &Facts) -> Vec<(u16, u16, String)> {
    let mut out = Vec::new();
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        if let ["options", m, rest @ ..] = w.as_slice() {
            if norm(m) == "vfio_pci" {
                for v in rest.iter().filter_map(|o| o.strip_prefix("ids=")) {
                    for id in v.split(',') {
                        let mut p = id.split(':');
                        if let (Some(a), Some(b)) = (p.next(), p.next()) {
                            if let (Ok(a), Ok(b)) = (u16::from_str_radix(a, 16), u16::from_str_radix(b, 16)) {
                                out.push((a, b, l.file.clone()));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

pub(super) fn check_stale_driver(root: &HostRoot, f: &Facts) -> Check {
    let id = "stale_driver";
    let black = blacklisted(f);
    let ids = vfio_ids(f);
    let mut problems = Vec::new();
    let mut builtin = Vec::new();
    for d in f.devices() {
        let Some(drv) = d.driver.as_deref() else { continue };
        if matches!(drv, "vfio-pci" | "pcieport" | "pci-stub") {
            continue;
        }
        let why = black
            .iter()
            .find(|(m, _)| *m == norm(drv))
            .map(|(_, file)| format!("{file} blacklists {drv}"))
            .or_else(|| {
                ids.iter()
                    .find(|(v, p, _)| *v == d.vendor_id && *p == d.device_id)
                    .map(|(v, p, file)| format!("{file} gives {v:04x}:{p:04x} to vfio-pci"))
            });
        if let Some(why) = why {
            problems.push(format!("{} is on {drv} although {why}", d.address));
            if module_state(root, &norm(drv)) == ModState::BuiltIn {
                builtin.push(norm(drv));
            }
        }
    }
    if problems.is_empty() && !f.modprobe_unreadable.is_empty() {
        // Fail closed: an unreadable modprobe.d file may hold the blacklist that matters.
        return warn(
            id,
            false,
            format!(
                "cannot tell whether a device sits on a driver the configuration blacklists: {}",
                f.modprobe_unreadable.join("; ")
            ),
            "make those files readable (run as root) and check again",
        );
    }
    if problems.is_empty() {
        return ok(
            id,
            false,
            "no device sits on a driver the configuration blacklists or gives to vfio-pci",
        );
    }
    let stale = newer_inputs(root, f).is_some_and(|(_, n)| !n.is_empty());
    let mut fix = Vec::new();
    if stale {
        fix.push(format!(
            "the initramfs predates the configuration: {}",
            rebuild_command(root)
        ));
    } else {
        fix.push(format!(
            "make vfio-pci load first: `vfiotool persist <address>` writes softdep <driver> pre: vfio-pci into {}, then {}",
            crate::config::persist::MODPROBE_CONF,
            rebuild_command(root)
        ));
    }
    for m in builtin {
        fix.push(format!(
            "{m} is built into this kernel: a blacklist cannot stop it; use vfio-pci.ids= on the kernel command line or bind by address (vfiotool persist)"
        ));
    }
    fix.push("reboot".into());
    warn(id, false, problems.join("; "), fix.join("\n"))
}

/// Modules whose devices the host keeps (storage, network, USB, sound, the boot GPU).
fn host_devices_of<'a>(f: &'a Facts, aliases: &ModuleAliases, m: &str) -> Vec<&'a Device> {
    // A slot that holds a non-boot display device is a passthrough candidate: its functions
    // (HDMI audio, USB-C) go with the GPU.
    let passthrough_slot = |d: &Device| {
        f.devices()
            .any(|g| g.address.slot() == d.address.slot() && g.is_display() && g.boot_vga != Some(true))
    };
    f.devices()
        .filter(|d| !d.bridge && !passthrough_slot(d) && d.driver.as_deref() != Some("vfio-pci"))
        .filter(|d| {
            d.driver.as_deref().map(norm).as_deref() == Some(m)
                || aliases.modules_for(d).iter().any(|x| norm(x) == m)
        })
        .collect()
}

pub(super) fn check_blacklist_lines(root: &HostRoot, f: &Facts) -> Check {
    let id = "blacklist_lines";
    let aliases = root
        .modules_dir()
        .and_then(|d| ModuleAliases::load(&d.join("modules.alias")).ok())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut seen = 0;
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        let ["blacklist", m, ..] = w.as_slice() else {
            continue;
        };
        seen += 1;
        if m.contains(['*', '?', '[']) {
            problems.push(format!(
                "\"blacklist {m}\" in {} does nothing: modprobe matches module names exactly, not globs",
                l.file
            ));
            let stem = m.trim_end_matches(['*', '?']);
            if stem.starts_with("nvidia") {
                fixes.push(format!("in {}: one line per module: blacklist nvidia, blacklist nvidia_drm, blacklist nvidia_modeset, blacklist nvidia_uvm", l.file));
            } else {
                fixes.push(format!(
                    "in {}: one blacklist line per module name (lsmod | grep {stem} lists them)",
                    l.file
                ));
            }
            continue;
        }
        let name = norm(m);
        // A captured tree keeps only the modules.dep lines vfiotool needs: "missing" is only
        // believable on the live host.
        if root.is_live() && module_state(root, &name) == ModState::Missing {
            problems.push(format!(
                "\"blacklist {m}\" in {}: this kernel has no module {name}",
                l.file
            ));
            fixes.push(format!("check the spelling in {} (modinfo {name})", l.file));
            continue;
        }
        let host = host_devices_of(f, &aliases, &name);
        if !host.is_empty() {
            let list: Vec<String> = host
                .iter()
                .map(|d| {
                    format!(
                        "{}{}",
                        d.address,
                        d.host_role().map(|r| format!(" ({r})")).unwrap_or_default()
                    )
                })
                .collect();
            problems.push(format!(
                "\"blacklist {m}\" in {} also takes {} from the host",
                l.file,
                list.join(", ")
            ));
            fixes.push(format!(
                "remove it from {} and bind the passthrough functions by address instead (vfiotool persist <address>), then {}",
                l.file,
                rebuild_command(root)
            ));
        }
    }
    if problems.is_empty() {
        return ok(
            id,
            false,
            format!("{seen} blacklist line(s), each names a module and takes nothing the host uses"),
        );
    }
    crate::host::check::unique(&mut fixes);
    warn(id, false, problems.join("; "), fixes.join("\n"))
}
