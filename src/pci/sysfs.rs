//! A sysfs root that can point elsewhere, and reads and writes that keep the path in their errors.
//!
//! [`SysfsRoot::live`] is `/sys`; [`SysfsRoot::new`] takes any directory laid out like `/sys`
//! (a tree saved by `vfiotool capture`, or a synthetic one in tests). Every path this crate uses
//! under sysfs is built here, so a command run on a captured tree never touches the live host.
//!
//! Reads return `Ok(None)` when the attribute does not exist (an absent `driver` link means
//! "unbound", an absent `boot_vga` means "not a VGA device"); any other failure is a
//! [`PathError`] that names the path and the action.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::PathError;
use crate::pci::address::PciAddress;

/// Largest attribute read as text (sysfs attributes are at most one page).
const MAX_ATTR: u64 = 64 * 1024;

/// Where `/sys` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsRoot {
    root: PathBuf,
}

impl Default for SysfsRoot {
    fn default() -> Self {
        Self::live()
    }
}

impl SysfsRoot {
    /// The running kernel's `/sys`.
    pub fn live() -> Self {
        SysfsRoot {
            root: PathBuf::from("/sys"),
        }
    }

    /// A directory laid out like `/sys` (it holds `bus/pci/devices`, `kernel/iommu_groups`, ...).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SysfsRoot { root: root.into() }
    }

    /// Is this the live `/sys`?
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/sys")
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/<rel>` for any path relative to `/sys` (e.g. `"module/vfio"`).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// `<root>/bus/pci/devices`: one entry (a symlink on a real kernel) per PCI function.
    pub fn pci_devices_dir(&self) -> PathBuf {
        self.root.join("bus/pci/devices")
    }

    /// `<root>/bus/pci/devices/<addr>`.
    pub fn device_dir(&self, addr: &PciAddress) -> PathBuf {
        self.pci_devices_dir().join(addr.to_string())
    }

    /// `<root>/bus/pci/devices/<addr>/<attr>`.
    pub fn device_attr(&self, addr: &PciAddress, attr: &str) -> PathBuf {
        self.device_dir(addr).join(attr)
    }

    /// `<root>/bus/pci/drivers/<driver>` (holds `bind`, `unbind`, `new_id`).
    pub fn driver_dir(&self, driver: &str) -> PathBuf {
        self.root.join("bus/pci/drivers").join(driver)
    }

    /// `<root>/bus/pci/drivers_probe`.
    pub fn drivers_probe(&self) -> PathBuf {
        self.root.join("bus/pci/drivers_probe")
    }

    /// `<root>/kernel/iommu_groups`: one directory per group, each with `devices/`.
    pub fn iommu_groups_dir(&self) -> PathBuf {
        self.root.join("kernel/iommu_groups")
    }

    /// `<root>/class/iommu`: one entry per IOMMU unit; empty when the IOMMU is off.
    pub fn class_iommu_dir(&self) -> PathBuf {
        self.root.join("class/iommu")
    }

    /// `<root>/module/<name>`: present when the module is loaded or built in.
    pub fn module_dir(&self, name: &str) -> PathBuf {
        self.root.join("module").join(name)
    }

    /// Addresses of every PCI function under `bus/pci/devices`, sorted like `lspci`.
    /// Entries whose names are not PCI addresses are skipped.
    pub fn list_devices(&self) -> Result<Vec<PciAddress>, PathError> {
        let dir = self.pci_devices_dir();
        let entries = fs::read_dir(&dir).map_err(|e| path_err(&dir, "listing PCI devices", e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| path_err(&dir, "listing PCI devices", e))?;
            if let Some(addr) = entry.file_name().to_str().and_then(|n| PciAddress::parse(n).ok()) {
                out.push(addr);
            }
        }
        out.sort();
        Ok(out)
    }

    /// A device attribute as trimmed text; `None` when it does not exist.
    pub fn read_device_attr(&self, addr: &PciAddress, attr: &str) -> Result<Option<String>, PathError> {
        read_text(&self.device_attr(addr, attr))
    }

    /// The last component of the link `<device>/<link>` (`driver` -> `"vfio-pci"`,
    /// `iommu_group` -> `"12"`); `None` when the link does not exist.
    pub fn read_device_link(&self, addr: &PciAddress, link: &str) -> Result<Option<String>, PathError> {
        read_link_name(&self.device_attr(addr, link))
    }
}

fn path_err(path: &Path, action: &'static str, source: io::Error) -> PathError {
    PathError {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Read a whole small file as text, trimmed of surrounding whitespace; `None` if it is missing.
pub fn read_text(path: &Path) -> Result<Option<String>, PathError> {
    match read_bytes(path, MAX_ATTR)? {
        Some(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        None => Ok(None),
    }
}

/// Read up to `limit` bytes of a regular file (sysfs and procfs attributes are regular files);
/// `None` if it is missing.
///
/// A captured tree is untrusted input: a FIFO, socket or device node in place of `config` or
/// `proc/cmdline` would block a plain `open`/`read` forever. The file is opened with
/// `O_NONBLOCK` (an open of a FIFO returns at once) and refused unless it is a regular file.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, PathError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(path_err(path, "opening", e)),
    };
    let meta = file.metadata().map_err(|e| path_err(path, "opening", e))?;
    if !meta.is_file() {
        return Err(path_err(
            path,
            "opening",
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file (refused: reading it could block)",
            ),
        ));
    }
    let mut buf = Vec::new();
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| path_err(path, "reading", e))?;
    Ok(Some(buf))
}

/// Parse a sysfs hex attribute such as `0x10de` or `0x030000`.
pub fn parse_hex(text: &str) -> Option<u32> {
    let t = text.trim();
    let digits = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    u32::from_str_radix(digits, 16).ok()
}

/// The file name a symlink points to (`../../../bus/pci/drivers/nvme` -> `nvme`);
/// `None` if the link is missing.
pub fn read_link_name(path: &Path) -> Result<Option<String>, PathError> {
    match fs::read_link(path) {
        Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(path_err(path, "reading link", e)),
    }
}

/// Write `value` to a sysfs attribute in one `write` call (sysfs takes one write per store),
/// without creating or truncating anything. The error names the path; the kernel's refusal
/// (`EBUSY`, `ENODEV`, `EINVAL`, ...) is in the source error.
pub fn write_attr(path: &Path, value: &str) -> Result<(), PathError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| path_err(path, "opening for writing", e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| path_err(path, "writing", e))
}

/// Names of the entries of a directory, sorted; an empty list if it does not exist.
pub fn dir_names(path: &Path) -> Result<Vec<String>, PathError> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(path_err(path, "listing", e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| path_err(path, "listing", e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path());
        let a = PciAddress::new(0, 1, 0, 0);
        let dev = root.device_dir(&a);
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("vendor"), "0x10de\n").unwrap();
        std::os::unix::fs::symlink("../../../bus/pci/drivers/nvidia", dev.join("driver")).unwrap();
        assert_eq!(
            root.read_device_attr(&a, "vendor").unwrap().as_deref(),
            Some("0x10de")
        );
        assert_eq!(root.read_device_attr(&a, "boot_vga").unwrap(), None);
        assert_eq!(
            root.read_device_link(&a, "driver").unwrap().as_deref(),
            Some("nvidia")
        );
        assert_eq!(root.read_device_link(&a, "iommu_group").unwrap(), None);
        assert_eq!(root.list_devices().unwrap(), vec![a]);
        assert_eq!(parse_hex("0x030000"), Some(0x030000));
        assert_eq!(parse_hex("zz"), None);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_bytes(&fifo, 64).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(e.to_string().contains("config"), "{e}");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert!(read_text(&dir.path().join("zero")).is_err());
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path().join("nowhere"));
        let e = root.list_devices().unwrap_err();
        assert!(e.to_string().contains("nowhere/bus/pci/devices"), "{e}");
        let e = write_attr(&dir.path().join("missing/attr"), "x").unwrap_err();
        assert!(e.to_string().contains("missing/attr: opening for writing"), "{e}");
    }
}
