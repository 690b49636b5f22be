//! `vfiotool capture DIR`: copy what `check`, `list` and `groups` read into a directory, so the
//! same commands run later with `--root DIR` (on another machine, attached to a bug report).
//!
//! Layout written (paths as on the host): `sys/bus/pci/devices/*` (symlinks kept as symlinks,
//! their targets under `sys/devices/...` as real directories with the attributes below),
//! `sys/kernel/iommu_groups/N/devices/*`, `sys/class/iommu/*` (with `intel-iommu/ecap`),
//! `sys/module/<vfio, kvm and GPU modules>/parameters/*`, framebuffer platform drivers,
//! `proc/{cmdline,interrupts,iomem,sys/kernel/osrelease}`, `proc/cpuinfo` (vendor, model and
//! flags of the first CPU only), the boot loader and modprobe files under `etc/`, the lines of
//! `lib/modules/<release>/modules.{dep,builtin,alias}` that concern the checked modules and the
//! present devices, an empty `dev/kvm` when `/dev/kvm` exists, the kernel log as `dev/kmsg`
//! (the /dev/kmsg records), and an empty `boot/initrd.img-<release>` (or the dracut/mkinitcpio
//! name) carrying the real initramfs's modification time; copied files keep their modification
//! times. ROM and initramfs contents and anything else are never copied. Files that cannot be read are listed in `skipped`, not fatal.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::kmsg::{self, KernelLog};
use crate::host::HostRoot;
use crate::pci::device::Device;
use crate::pci::modules::glob_match;
use crate::pci::sysfs;

pub const SCHEMA: &str = "vfiotool.capture/1";

/// Device attributes copied as files (`rom` is written as an empty marker, never read).
const DEVICE_FILES: [&str; 23] = [
    "config",
    "vendor",
    "device",
    "class",
    "revision",
    "subsystem_vendor",
    "subsystem_device",
    "driver_override",
    "reset_method",
    "boot_vga",
    "modalias",
    "irq",
    "resource",
    "numa_node",
    "enable",
    "d3cold_allowed",
    "power_state",
    "resource0_resize",
    "resource1_resize",
    "resource2_resize",
    "resource3_resize",
    "resource4_resize",
    "resource5_resize",
];

/// Modules whose `/sys/module` entry and `modules.dep` line the checks read.
const MODULES: [&str; 14] = [
    "vfio",
    "vfio_iommu_type1",
    "vfio_pci",
    "vfio_pci_core",
    "vfio_virqfd",
    "kvm",
    "kvm_intel",
    "kvm_amd",
    "nouveau",
    "nvidia",
    "amdgpu",
    "radeon",
    "i915",
    "vendor_reset",
];

/// Full PCI config space: more than 4 KiB is never there.
const MAX_CONFIG: u64 = 4096;
/// Cap on entries copied from any one directory.
const MAX_ENTRIES: usize = 65_536;

/// What `capture` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureSummary {
    pub schema: &'static str,
    pub output: String,
    pub kernel_release: Option<String>,
    pub devices: usize,
    pub groups: usize,
    pub files: usize,
    /// Files that exist but could not be read (e.g. root-only), as `path: error`.
    pub skipped: Vec<String>,
}

struct Writer<'a> {
    src: &'a HostRoot,
    out: PathBuf,
    files: usize,
    skipped: Vec<String>,
}

fn io_err(path: &Path, action: &str, e: &io::Error) -> Error {
    Error::io(path, action, e)
}

impl Writer<'_> {
    fn ensure_dir(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, "creating directory", &e))
    }

    fn write(&mut self, rel: &Path, bytes: &[u8]) -> Result<()> {
        let dst = self.out.join(rel);
        if let Some(parent) = dst.parent() {
            self.ensure_dir(parent)?;
        }
        fs::write(&dst, bytes).map_err(|e| io_err(&dst, "writing", &e))?;
        self.files += 1;
        Ok(())
    }

    /// Copy one file of at most `limit` bytes, keeping its modification time (the initramfs
    /// check compares them); unreadable files are recorded, missing ones skipped.
    fn copy_file(&mut self, src: &Path, rel: &Path, limit: u64) -> Result<()> {
        match sysfs::read_bytes(src, limit) {
            Ok(Some(bytes)) => {
                self.write(rel, &bytes)?;
                self.keep_mtime(src, rel);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.skipped.push(e.to_string());
                Ok(())
            }
        }
    }

    /// Give the copy at `rel` the modification time of `src` (best effort: sysfs files have
    /// none worth keeping, and a failure only loses the initramfs comparison).
    fn keep_mtime(&mut self, src: &Path, rel: &Path) {
        let Ok(t) = fs::metadata(src).and_then(|m| m.modified()) else {
            return;
        };
        if let Ok(f) = fs::File::options().write(true).open(self.out.join(rel)) {
            let _ = f.set_modified(t);
        }
    }

    /// Recreate the symlink `src` at `rel` with the same (relative) target. Returns false when
    /// `src` is not a symlink.
    fn copy_link(&mut self, src: &Path, rel: &Path) -> Result<bool> {
        let target = match fs::read_link(src) {
            Ok(t) => t,
            Err(_) => return Ok(false),
        };
        let dst = self.out.join(rel);
        if let Some(parent) = dst.parent() {
            self.ensure_dir(parent)?;
        }
        if dst.symlink_metadata().is_err() {
            symlink(&target, &dst).map_err(|e| io_err(&dst, "creating symlink", &e))?;
            self.files += 1;
        }
        Ok(true)
    }

    /// `src` (inside the source sysfs) as a path relative to the output's `sys/`.
    fn sys_rel(&self, src: &Path) -> Option<PathBuf> {
        let base = fs::canonicalize(self.src.sysfs.path()).ok()?;
        let real = fs::canonicalize(src).ok()?;
        real.strip_prefix(&base).ok().map(|p| Path::new("sys").join(p))
    }
}

/// Copy the host `src` into `out` (created; refused when it exists and is not empty).
pub fn capture(src: &HostRoot, out: &Path) -> Result<CaptureSummary> {
    if let Ok(mut entries) = fs::read_dir(out) {
        if entries.next().is_some() {
            return Err(Error::usage(format!(
                "{}: exists and is not empty; name a new directory",
                out.display()
            )));
        }
    }
    fs::create_dir_all(out).map_err(|e| io_err(out, "creating directory", &e))?;
    let mut w = Writer {
        src,
        out: out.to_path_buf(),
        files: 0,
        skipped: Vec::new(),
    };
    let devices = capture_devices(&mut w)?;
    let groups = capture_groups(&mut w)?;
    capture_sys_misc(&mut w)?;
    capture_proc(&mut w)?;
    capture_etc(&mut w)?;
    capture_modules(&mut w, &devices)?;
    if src.path("dev/kvm").exists() {
        w.write(Path::new("dev/kvm"), b"")?;
    }
    capture_boot(&mut w)?;
    if let KernelLog::Read { raw, .. } = kmsg::read(src) {
        let mut text = raw.join("\n");
        text.push('\n');
        w.write(Path::new(kmsg::REL_PATH), text.as_bytes())?;
    }
    let summary = CaptureSummary {
        schema: SCHEMA,
        output: out.display().to_string(),
        kernel_release: src.kernel_release(),
        devices: devices.len(),
        groups,
        files: w.files,
        skipped: w.skipped.clone(),
    };
    let manifest = serde_json::to_vec_pretty(&summary).map_err(|e| Error::system(e.to_string()))?;
    w.write(Path::new("vfiotool-capture.json"), &manifest)?;
    Ok(summary)
}

fn capture_devices(w: &mut Writer) -> Result<Vec<Device>> {
    let root = &w.src.sysfs;
    let addrs = root.list_devices()?;
    let mut devices = Vec::new();
    for addr in addrs.iter().take(MAX_ENTRIES) {
        let entry = root.device_dir(addr);
        let entry_rel = Path::new("sys/bus/pci/devices").join(addr.to_string());
        // The device directory: the symlink's target on a real kernel, the entry itself otherwise.
        let dir_rel = if w.copy_link(&entry, &entry_rel)? {
            match w.sys_rel(&entry) {
                Some(rel) => rel,
                None => {
                    w.skipped
                        .push(format!("{}: link target outside sysfs", entry.display()));
                    continue;
                }
            }
        } else {
            entry_rel
        };
        for name in DEVICE_FILES {
            let limit = if name == "config" { MAX_CONFIG } else { 64 * 1024 };
            w.copy_file(&entry.join(name), &dir_rel.join(name), limit)?;
        }
        if entry.join("rom").exists() {
            w.write(&dir_rel.join("rom"), b"")?;
        }
        for link in ["driver", "iommu_group"] {
            if w.copy_link(&entry.join(link), &dir_rel.join(link))? {
                // The link must resolve in the copy (lspci drops a driver whose link dangles),
                // and the directory must hold a file to survive version control.
                if let Some(target) = w.sys_rel(&entry.join(link)) {
                    if link == "driver" && w.out.join(&target).symlink_metadata().is_err() {
                        w.write(&target.join("uevent"), b"")?;
                    }
                }
            }
        }
        match Device::read(root, addr) {
            Ok(d) => devices.push(d),
            Err(e) => w.skipped.push(e.to_string()),
        }
    }
    Ok(devices)
}

fn capture_groups(w: &mut Writer) -> Result<usize> {
    let dir = w.src.sysfs.iommu_groups_dir();
    let groups = sysfs::dir_names(&dir)?;
    for g in groups.iter().take(MAX_ENTRIES) {
        let gdir = dir.join(g);
        let rel = Path::new("sys/kernel/iommu_groups").join(g);
        w.ensure_dir(&w.out.join(&rel).join("devices"))?;
        w.copy_file(&gdir.join("type"), &rel.join("type"), 4096)?;
        for d in sysfs::dir_names(&gdir.join("devices"))?.iter().take(MAX_ENTRIES) {
            w.copy_link(&gdir.join("devices").join(d), &rel.join("devices").join(d))?;
        }
    }
    Ok(groups.len())
}

fn capture_sys_misc(w: &mut Writer) -> Result<()> {
    let sys = w.src.sysfs.clone();
    // IOMMU units: the class entry (a symlink) and its capability registers.
    let class = sys.class_iommu_dir();
    w.ensure_dir(&w.out.join("sys/class/iommu"))?;
    for unit in sysfs::dir_names(&class)?.iter().take(MAX_ENTRIES) {
        let entry = class.join(unit);
        let rel = Path::new("sys/class/iommu").join(unit);
        let dir_rel = if w.copy_link(&entry, &rel)? {
            w.sys_rel(&entry).unwrap_or(rel)
        } else {
            rel
        };
        for f in [
            "intel-iommu/ecap",
            "intel-iommu/cap",
            "intel-iommu/version",
            "amd-iommu/cap",
            "amd-iommu/features",
        ] {
            w.copy_file(&entry.join(f), &dir_rel.join(f), 4096)?;
        }
    }
    for m in MODULES {
        let dir = sys.module_dir(m);
        if !dir.exists() {
            continue;
        }
        let rel = Path::new("sys/module").join(m);
        w.ensure_dir(&w.out.join(&rel))?;
        w.copy_file(&dir.join("initstate"), &rel.join("initstate"), 4096)?;
        for p in sysfs::dir_names(&dir.join("parameters"))?
            .iter()
            .take(MAX_ENTRIES)
        {
            w.copy_file(
                &dir.join("parameters").join(p),
                &rel.join("parameters").join(p),
                64 * 1024,
            )?;
        }
    }
    if sys.join("firmware/acpi/tables").is_dir() {
        // The directory says "ACPI tables were visible" (so a missing DMAR/IVRS means the
        // firmware has none); a file keeps it in version control.
        w.write(Path::new("sys/firmware/acpi/tables/captured-by-vfiotool"), b"")?;
    }
    for table in ["DMAR", "IVRS"] {
        if sys.join("firmware/acpi/tables").join(table).exists() {
            // Presence only: the table itself is root-only and not needed.
            w.write(&Path::new("sys/firmware/acpi/tables").join(table), b"")?;
        }
    }
    for drv in [
        "efi-framebuffer",
        "simple-framebuffer",
        "vesa-framebuffer",
        "simpledrm",
    ] {
        let dir = sys.join("bus/platform/drivers").join(drv);
        for n in sysfs::dir_names(&dir)?
            .iter()
            .filter(|n| n.contains('.'))
            .take(MAX_ENTRIES)
        {
            w.copy_link(
                &dir.join(n),
                &Path::new("sys/bus/platform/drivers").join(drv).join(n),
            )?;
        }
    }
    Ok(())
}

fn capture_proc(w: &mut Writer) -> Result<()> {
    let proc_dir = w.src.proc_dir.clone();
    for f in ["cmdline", "interrupts", "iomem", "sys/kernel/osrelease"] {
        w.copy_file(&proc_dir.join(f), &Path::new("proc").join(f), 16 * 1024 * 1024)?;
    }
    if let Some(text) = w.src.read_proc("cpuinfo")? {
        // The first CPU's identity and flags only.
        let keep = ["vendor_id", "model name", "flags", "cpu family", "model"];
        let mut out = String::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                break;
            }
            let key = line.split(':').next().unwrap_or_default().trim();
            if keep.contains(&key) {
                out.push_str(line);
                out.push('\n');
            }
        }
        w.write(Path::new("proc/cpuinfo"), out.as_bytes())?;
    }
    Ok(())
}

/// The running kernel's initramfs, as an empty file with its modification time (never its
/// contents): the initramfs check compares that time with the modprobe.d files'.
fn capture_boot(w: &mut Writer) -> Result<()> {
    let Some(release) = w.src.kernel_release() else {
        return Ok(());
    };
    for rel in [
        format!("boot/initrd.img-{release}"),
        format!("boot/initramfs-{release}.img"),
        format!("boot/initrd-{release}"),
        "boot/initramfs-linux.img".to_string(),
    ] {
        let src = w.src.path(&rel);
        if src.is_file() {
            w.write(Path::new(&rel), b"")?;
            w.keep_mtime(&src, Path::new(&rel));
        }
    }
    Ok(())
}

fn capture_etc(w: &mut Writer) -> Result<()> {
    let files = [
        "etc/default/grub",
        "etc/kernel/cmdline",
        "etc/kernel/proxmox-boot-uuids",
        "etc/kernelstub/configuration",
        "etc/modules",
        "etc/initramfs-tools/modules",
        "etc/mkinitcpio.conf",
        "etc/os-release",
        "etc/dracut.conf",
    ];
    for f in files {
        w.copy_file(&w.src.path(f), Path::new(f), 1024 * 1024)?;
    }
    for dir in ["etc/modprobe.d", "etc/modules-load.d", "etc/dracut.conf.d"] {
        for name in sysfs::dir_names(&w.src.path(dir))?
            .iter()
            .filter(|n| n.ends_with(".conf"))
            .take(MAX_ENTRIES)
        {
            let rel = Path::new(dir).join(name);
            w.copy_file(&w.src.path(&rel.to_string_lossy()), &rel, 1024 * 1024)?;
        }
    }
    Ok(())
}

fn capture_modules(w: &mut Writer, devices: &[Device]) -> Result<()> {
    let (Some(dir), Some(release)) = (w.src.modules_dir(), w.src.kernel_release()) else {
        return Ok(());
    };
    let rel = Path::new("lib/modules").join(&release);
    let module_line = |line: &str| {
        let path = line.split(':').next().unwrap_or_default();
        let file = path.rsplit('/').next().unwrap_or_default();
        let stem = file.split(".ko").next().unwrap_or_default().replace('-', "_");
        MODULES.contains(&stem.as_str())
    };
    for f in ["modules.dep", "modules.builtin"] {
        if let Some(bytes) = sysfs::read_bytes(&dir.join(f), 64 * 1024 * 1024)? {
            let text = String::from_utf8_lossy(&bytes);
            let kept: String = text
                .lines()
                .filter(|l| module_line(l))
                .map(|l| format!("{l}\n"))
                .collect();
            w.write(&rel.join(f), kept.as_bytes())?;
        }
    }
    if let Some(bytes) = sysfs::read_bytes(&dir.join("modules.alias"), 64 * 1024 * 1024)? {
        let text = String::from_utf8_lossy(&bytes);
        let aliases: Vec<String> = devices.iter().map(Device::modalias).collect();
        let kept: String = text
            .lines()
            .filter(|l| {
                let mut p = l.split_whitespace();
                p.next() == Some("alias")
                    && p.next().is_some_and(|pat| {
                        pat.starts_with("pci:")
                            && aliases.iter().any(|a| glob_match(pat.as_bytes(), a.as_bytes()))
                    })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        w.write(&rel.join("modules.alias"), kept.as_bytes())?;
    }
    Ok(())
}
