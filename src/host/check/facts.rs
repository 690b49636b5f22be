//! Everything the checks look at, read once through a [`HostRoot`] ([`Facts::gather`]), and the
//! small helpers that read module state and configuration lines. `explain` reads the same facts.

use crate::host::bootloader::{self, BootLoader};
use crate::host::HostRoot;
use crate::pci::device::Device;
use crate::pci::groups::{self, Groups};
use crate::pci::sysfs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cpu {
    Intel,
    Amd,
    Other,
}

/// A module's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModState {
    /// `/sys/module/<name>` exists (loaded, or built in with parameters).
    Loaded,
    /// Listed in `modules.builtin`.
    BuiltIn,
    /// Listed in `modules.dep`: `modprobe` can load it.
    Loadable,
    /// Not found anywhere.
    Missing,
    /// Not loaded, and the kernel's module lists are not available to tell more.
    Unknown,
}

pub(crate) use crate::host::modprobe::ConfLine;

/// Everything the checks look at, read once.
pub(crate) struct Facts {
    pub(crate) cpu: Cpu,
    pub(crate) cpu_vendor: Option<String>,
    pub(crate) flags: Vec<String>,
    pub(crate) cmdline: Vec<String>,
    pub(crate) release: Option<String>,
    pub(crate) version: Option<(u32, u32)>,
    pub(crate) iommu_units: Vec<String>,
    pub(crate) groups: Groups,
    pub(crate) group_count: usize,
    pub(crate) devices_error: Option<String>,
    pub(crate) interrupts: Option<String>,
    pub(crate) iomem: Option<String>,
    pub(crate) allow_unsafe: Option<bool>,
    pub(crate) modprobe: Vec<ConfLine>,
    /// modprobe.d files that exist but could not be read.
    pub(crate) modprobe_unreadable: Vec<String>,
    pub(crate) boot: BootLoader,
    pub(crate) klog: crate::host::kmsg::KernelLog,
}

pub(crate) fn norm(module: &str) -> String {
    module.replace('-', "_")
}

/// `6.1.0-27-amd64` -> (6, 1).
pub(crate) fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// modprobe.d through the one reader (`host::modprobe`).
pub(crate) fn read_modprobe(root: &HostRoot) -> crate::host::modprobe::ModprobeConf {
    crate::host::modprobe::ModprobeConf::read(root)
}

pub(crate) fn gather(root: &HostRoot) -> Facts {
    let modprobe = read_modprobe(root);
    let cpuinfo = root.read_proc("cpuinfo").ok().flatten().unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let cpu_vendor = field("vendor_id");
    let cpu = match cpu_vendor.as_deref() {
        Some("GenuineIntel") => Cpu::Intel,
        Some("AuthenticAMD") | Some("HygonGenuine") => Cpu::Amd,
        _ => Cpu::Other,
    };
    let flags = field("flags")
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let cmdline = root
        .read_proc("cmdline")
        .ok()
        .flatten()
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let release = root.kernel_release();
    let version = release.as_deref().and_then(parse_version);
    let iommu_units = sysfs::dir_names(&root.sysfs.class_iommu_dir()).unwrap_or_default();
    let group_count = groups::group_numbers(&root.sysfs).map(|g| g.len()).unwrap_or(0);
    let (groups, devices_error) = match Groups::read(&root.sysfs) {
        Ok(g) => (g, None),
        Err(e) => (Groups::from_devices(Vec::new()), Some(e.to_string())),
    };
    let allow_unsafe = root
        .sysfs
        .join("module/vfio_iommu_type1/parameters/allow_unsafe_interrupts")
        .to_str()
        .and_then(|p| sysfs::read_text(std::path::Path::new(p)).ok().flatten())
        .map(|v| v == "Y" || v == "1");
    Facts {
        cpu,
        cpu_vendor,
        flags,
        cmdline,
        release,
        version,
        iommu_units,
        groups,
        group_count,
        devices_error,
        interrupts: root.read_proc("interrupts").ok().flatten(),
        iomem: root.read_proc("iomem").ok().flatten(),
        allow_unsafe,
        modprobe: modprobe.lines,
        modprobe_unreadable: modprobe.unreadable,
        boot: bootloader::detect(root),
        klog: crate::host::kmsg::read(root),
    }
}

impl Facts {
    pub(crate) fn devices(&self) -> impl Iterator<Item = &Device> {
        self.groups
            .groups
            .iter()
            .flat_map(|g| g.devices.iter())
            .chain(self.groups.ungrouped.iter())
    }

    pub(crate) fn has_arg(&self, arg: &str) -> bool {
        self.cmdline.iter().any(|a| a == arg)
    }

    /// The value of the last `key=` argument.
    pub(crate) fn arg_value(&self, key: &str) -> Option<&str> {
        self.cmdline
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    }

    /// The argument that turns the IOMMU on: by the IOMMU units present (`dmar*` Intel VT-d,
    /// `ivhd*` AMD-Vi), else by the CPU vendor.
    pub(crate) fn iommu_on_arg(&self) -> &'static str {
        if self.iommu_units.iter().any(|u| u.starts_with("dmar")) {
            return "intel_iommu=on";
        }
        if self.iommu_units.iter().any(|u| u.starts_with("ivhd")) {
            return "amd_iommu=on";
        }
        match self.cpu {
            Cpu::Amd => "amd_iommu=on",
            _ => "intel_iommu=on",
        }
    }

    pub(crate) fn iommu_active(&self) -> bool {
        !self.iommu_units.is_empty() && self.group_count > 0
    }

    /// The GPU drivers the boot GPU's vendor uses.
    pub(crate) fn boot_gpus(&self) -> Vec<&Device> {
        self.devices().filter(|d| d.boot_vga == Some(true)).collect()
    }
}

pub(crate) fn module_state(root: &HostRoot, name: &str) -> ModState {
    if root.sysfs.module_dir(name).exists() {
        return ModState::Loaded;
    }
    let Some(dir) = root.modules_dir() else {
        return ModState::Unknown;
    };
    let matches = |text: &str| {
        text.lines().any(|l| {
            let path = l.split(':').next().unwrap_or_default();
            let file = path.rsplit('/').next().unwrap_or_default();
            let stem = file.split(".ko").next().unwrap_or_default();
            file.contains(".ko") && norm(stem) == name
        })
    };
    let read = |f: &str| sysfs::read_bytes(&dir.join(f), 64 * 1024 * 1024).ok().flatten();
    if read("modules.builtin").is_some_and(|b| matches(&String::from_utf8_lossy(&b))) {
        return ModState::BuiltIn;
    }
    match read("modules.dep") {
        Some(b) if matches(&String::from_utf8_lossy(&b)) => ModState::Loadable,
        Some(_) => ModState::Missing,
        None => ModState::Unknown,
    }
}
