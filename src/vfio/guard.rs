//! The guards a bind passes before its first change: is the device host-critical (the boot
//! GPU's framebuffer, a mounted disk or swap, the default route's NIC), and can vfio-pci load
//! (or why not: blacklisted, missing). They fail closed: an input that exists but cannot be
//! read refuses and names the path; nothing unreadable counts as "not in use".

use crate::vfio::{Action, Outcome};
use std::fs;

use super::bind::VFIO_PCI;
use super::host::Host;
use super::Step;
use crate::pci::address::PciAddress;

/// A guard input that could not be read: the guard refuses instead of guessing "not in use".
#[derive(Debug)]
pub struct GuardError {
    pub path: std::path::PathBuf,
    pub error: GuardCause,
}

/// Why a guard input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GuardCause {
    /// A file the guard needs is not there (and its absence does not mean "nothing in use").
    #[error("missing")]
    Missing,
    #[error("{0}")]
    Io(std::io::Error),
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read {} ({}), which the host-critical guard needs to know whether the device is in \
             use; refusing",
            self.path.display(),
            self.error
        )
    }
}

impl From<crate::error::PathError> for GuardError {
    fn from(e: crate::error::PathError) -> Self {
        GuardError {
            path: e.path,
            error: GuardCause::Io(e.source),
        }
    }
}

/// Largest /proc table a guard reads (mounts on a container host run to thousands of lines).
pub(crate) const MAX_GUARD_FILE: u64 = 16 << 20;

/// A guard input as text. `absent_ok`: a missing file means the kernel lacks the feature (no
/// fbdev, no swap, no IPv4), so nothing can be in use through it; any other failure refuses.
pub(crate) fn guard_read(host: &Host, abs: &str, absent_ok: bool) -> Result<String, GuardError> {
    let path = host.path(abs);
    match crate::pci::sysfs::read_bytes(&path, MAX_GUARD_FILE) {
        Ok(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Ok(None) if absent_ok => Ok(String::new()),
        Ok(None) => Err(GuardError {
            path,
            error: GuardCause::Missing,
        }),
        Err(e) => Err(GuardError {
            path,
            error: GuardCause::Io(e.source),
        }),
    }
}

/// Why `addr` must not be taken from the host without `--force`, if it is host-critical. Fails
/// closed: an input it cannot read is an error naming the path, never "not in use".
pub fn host_critical(host: &Host, addr: &PciAddress) -> Result<Option<String>, GuardError> {
    let class = host.class(addr)? >> 16;
    let dev_dir = host.device_dir(addr);
    let real = fs::canonicalize(&dev_dir).map_err(|e| GuardError {
        path: dev_dir.clone(),
        error: GuardCause::Io(e),
    })?;
    if class == 0x03 && host.boot_vga(addr)? {
        let fb = guard_read(host, "/proc/fb", true)?;
        if !fb.trim().is_empty() {
            return Ok(Some(format!(
                "{addr} is the boot GPU and a framebuffer holds it ({}); stop the console/display \
                 manager or boot with video=efifb:off",
                fb.lines().next().unwrap_or("").trim()
            )));
        }
    }
    // Block devices below the device with a mounted file system or active swap.
    let block_dir = host.path("/sys/block");
    let blocks = fs::read_dir(&block_dir).map_err(|e| GuardError {
        path: block_dir.clone(),
        error: GuardCause::Io(e),
    })?;
    let mut below = Vec::new();
    for b in blocks.take(4096) {
        let b = b.map_err(|e| GuardError {
            path: block_dir.clone(),
            error: GuardCause::Io(e),
        })?;
        if fs::canonicalize(b.path()).is_ok_and(|dev| dev.starts_with(&real)) {
            below.push(b.file_name().to_string_lossy().into_owned());
        }
    }
    if !below.is_empty() {
        let mounts = guard_read(host, "/proc/mounts", false)? + &guard_read(host, "/proc/swaps", true)?;
        for name in &below {
            let dev_name = format!("/dev/{name}");
            let hit = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(|src| (src, l)))
                .find(|(src, _)| src.starts_with(&dev_name));
            if let Some((src, line)) = hit {
                let on = line.split_whitespace().nth(1).unwrap_or("swap");
                return Ok(Some(format!(
                    "{addr} is the storage controller of {src}, mounted on {on}; unmount it first"
                )));
            }
        }
    }
    // The NIC of the default route.
    let route = guard_read(host, "/proc/net/route", true)?;
    for l in route.lines().skip(1).take(4096) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 2 && f[1] == "00000000" {
            let dev = host.path("/sys/class/net").join(f[0]).join("device");
            if fs::canonicalize(dev).ok().as_deref() == Some(real.as_path()) {
                return Ok(Some(format!(
                    "{addr} is the network card of the default route ({}); you would lose the network",
                    f[0]
                )));
            }
        }
    }
    Ok(None)
}

/// Is vfio-pci available? Loads it with modprobe when missing; says when it is blacklisted.
pub(crate) fn ensure_vfio_pci(host: &Host, dry_run: bool, steps: &mut Vec<Step>) -> crate::error::Result<()> {
    if host.driver_loaded(VFIO_PCI) {
        return Ok(());
    }
    if dry_run {
        steps.push(Step::other(
            Action::Module,
            "modprobe vfio-pci",
            Outcome::Planned,
            None,
        ));
        return Ok(());
    }
    let out = std::process::Command::new("modprobe").arg("vfio-pci").output();
    let detail = match &out {
        Ok(o) if o.status.success() && host.driver_loaded(VFIO_PCI) => {
            steps.push(Step::other(
                Action::Module,
                "modprobe vfio-pci",
                Outcome::Ok,
                None,
            ));
            return Ok(());
        }
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run modprobe: {e}"),
    };
    steps.push(Step::other(
        Action::Module,
        "modprobe vfio-pci",
        Outcome::Failed,
        Some(detail.clone()),
    ));
    let why = match blacklisted(host) {
        Blacklisted::No => {
            "the module is missing (install the kernel's modules package) or failed to load (see dmesg)"
                .to_string()
        }
        Blacklisted::At(w) => format!("it is blacklisted ({w}); remove that line"),
        Blacklisted::Unknown(why) => format!("whether it is blacklisted is unknown: {why}"),
    };
    Err(crate::error::Error::system(format!(
        "vfio-pci is not loaded and modprobe vfio-pci failed ({detail}): {why}"
    )))
}

/// Where vfio-pci is blacklisted, if it is (kernel command line, then modprobe.d through the
/// one reader in `host::modprobe`). An input that cannot be read is said, not taken as "no".
pub(crate) enum Blacklisted {
    No,
    /// Where it is blacklisted.
    At(String),
    /// An input could not be read.
    Unknown(String),
}

pub(crate) fn blacklisted(host: &Host) -> Blacklisted {
    let cmdline = match guard_read(host, "/proc/cmdline", false) {
        Ok(c) => c,
        Err(e) => return Blacklisted::Unknown(e.to_string()),
    };
    for w in cmdline.split_whitespace() {
        if let Some(list) = w
            .strip_prefix("module_blacklist=")
            .or_else(|| w.strip_prefix("modprobe.blacklist="))
        {
            if list.split(',').any(|m| m == "vfio_pci" || m == "vfio-pci") {
                return Blacklisted::At(format!("kernel command line: {w}"));
            }
        }
    }
    let conf = crate::host::modprobe::ModprobeConf::read(&host.host_root());
    if let Some(l) = conf.blacklist(VFIO_PCI) {
        return Blacklisted::At(format!("{}: {}", l.file, l.words.join(" ")));
    }
    if !conf.unreadable.is_empty() {
        return Blacklisted::Unknown(format!("cannot read {}", conf.unreadable.join("; ")));
    }
    Blacklisted::No
}
