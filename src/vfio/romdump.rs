//! Read a device's option ROM: through sysfs (`rom`: write 1, read until EOF, always write 0
//! again) or through VFIO (the ROM region, index 6, of a device on vfio-pci), trimmed to the end
//! of the image chain that `rom::analyze` finds. The bytes are analysed before anyone writes them.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use super::attach::{self, AttachError, AttachFacts, Attached, BackendChoice};
use super::host::{Host, WriteError};
use super::ioctl::{self, IommufdOps, VfioOps};
use super::iommufd::Session;
use crate::error::{Error, ExitKind};
use crate::output::Progress;
use crate::pci::address::PciAddress;
use crate::rom::{self, RomAnalysis};

/// A ROM BAR is at most 16 MiB.
const MAX_ROM: u64 = 16 << 20;

/// Where the bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Sysfs,
    Vfio,
}

/// A successful read.
pub struct Dump {
    pub bytes: Vec<u8>,
    pub analysis: RomAnalysis,
    /// Size of the ROM BAR / region (sysfs st_size or region size).
    pub bar_size: u64,
    /// Padding removed past the last image (VFIO reads).
    pub trimmed: usize,
    pub notes: Vec<String>,
}

/// A dump error: its exit kind and a message naming the device and path.
type DumpResult<T> = Result<T, Error>;

/// The ROM BAR, enabled: [`RomEnabled::disable`] writes 0 and says when that fails; dropping
/// it un-disabled (an early return) still tries, and a failure there is kept for the caller.
struct RomEnabled<'a> {
    host: &'a Host,
    path: std::path::PathBuf,
    done: bool,
}

impl RomEnabled<'_> {
    /// Write 0 to `rom`. A ROM BAR left enabled is its own error: the device decodes the ROM
    /// address range until something switches it off.
    fn disable(mut self) -> DumpResult<()> {
        self.done = true;
        self.host
            .write_timed(&self.path, "0", Duration::from_secs(5))
            .map_err(|e| {
                Error::new(
                    ExitKind::System,
                    format!(
                        "the ROM BAR is left ENABLED: write 0 to {} failed: {e}; switch it off with `echo 0 > {}`",
                        self.path.display(),
                        self.path.display()
                    ),
                )
            })
    }
}

impl Drop for RomEnabled<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.host.write_timed(&self.path, "0", Duration::from_secs(5)) {
                eprintln!(
                    "vfiotool: the ROM BAR is left ENABLED: write 0 to {} failed: {e}; switch it off with `echo 0 > {}`",
                    self.path.display(),
                    self.path.display()
                );
            }
        }
    }
}

/// A captured tree's `rom` file: the bytes the capture saved, read as they are (no enable
/// writes: the tree is untrusted input and is never written).
fn captured_rom(host: &Host, addr: &PciAddress) -> DumpResult<Dump> {
    let path = host.device_dir(addr).join("rom");
    let bytes = crate::pci::sysfs::read_bytes(&path, MAX_ROM + 1)
        .map_err(|e| Error::new(ExitKind::BadInput, e.to_string()))?
        .ok_or_else(|| {
            Error::new(
                ExitKind::BadInput,
                format!("{}: missing; the capture holds no ROM for {addr}", path.display()),
            )
        })?;
    let analysis = analyze(addr, &bytes, &[])?;
    Ok(Dump {
        bar_size: bytes.len() as u64,
        bytes,
        analysis,
        trimmed: 0,
        notes: vec![format!("read from the captured file {}", path.display())],
    })
}

fn shadow_note(host: &Host, addr: &PciAddress) -> Option<String> {
    // A note, not a guard: an unreadable boot_vga says so instead of guessing either way.
    let boot = match host.boot_vga(addr) {
        Ok(b) => b,
        Err(e) => return Some(format!("whether {addr} is the boot GPU is unknown ({e}): if it is, the kernel returns the shadow copy the BIOS patched in memory")),
    };
    boot.then(|| {
        format!(
            "{addr} is the boot GPU (boot_vga=1): the kernel returns the shadow copy the BIOS patched \
             in memory, which can differ from the flash; dump it from a secondary slot or with vfio for \
             the real image"
        )
    })
}

pub fn via_sysfs(host: &Host, addr: &PciAddress) -> DumpResult<Dump> {
    if host.captured {
        return captured_rom(host, addr);
    }
    let path = host.device_dir(addr).join("rom");
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::new(
            ExitKind::System,
            format!(
                "{}: {e}; the device has no ROM BAR (or the address is wrong)",
                path.display()
            ),
        )
    })?;
    host.write_timed(&path, "1", Duration::from_secs(5))
        .map_err(|e| {
            Error::new(ExitKind::System, {
                let hint = match &e {
                    WriteError::Io(io) if io.kind() == io::ErrorKind::PermissionDenied => " (run as root)",
                    _ => "",
                };
                format!("write 1 to {}: {e}{hint}", path.display())
            })
        })?;
    let guard = RomEnabled {
        host,
        path: path.clone(),
        done: false,
    };
    let mut bytes = Vec::new();
    let read = File::open(&path).and_then(|f| read_with_progress(host, addr, f, &mut bytes));
    guard.disable()?;
    let mut notes: Vec<String> = shadow_note(host, addr).into_iter().collect();
    // On error the note goes into the message; on success it stays in `notes`.
    if let Err(e) = read {
        let cause = if e.raw_os_error() == Some(nix::libc::EIO) {
            "the kernel found no valid ROM image (no 55AA signature), or the ROM is in use or hidden \
             (a GPU that is the boot device or already initialised by its driver)"
        } else {
            "read error"
        };
        if let Some(n) = notes.pop() {
            return Err(Error::new(
                ExitKind::BadInput,
                format!("{}: {e}: {cause}; {n}", path.display()),
            ));
        }
        return Err(Error::new(
            ExitKind::BadInput,
            format!("{}: {e}: {cause}", path.display()),
        ));
    }
    let analysis = analyze(addr, &bytes, &notes)?;
    Ok(Dump {
        bytes,
        analysis,
        bar_size: meta.len(),
        trimmed: 0,
        notes,
    })
}

/// Read up to `MAX_ROM + 1` bytes in chunks, showing how far it got: a ROM BAR behind a slow
/// flash can take seconds.
fn read_with_progress(host: &Host, addr: &PciAddress, file: File, bytes: &mut Vec<u8>) -> io::Result<()> {
    let mut progress = Progress::new(!host.progress);
    let mut limited = file.take(MAX_ROM + 1);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match limited.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes.extend_from_slice(&chunk[..n]);
        progress.update(&format!("reading the ROM of {addr}: {} KiB", bytes.len() >> 10));
    }
}

fn analyze(addr: &PciAddress, bytes: &[u8], notes: &[String]) -> DumpResult<RomAnalysis> {
    rom::analyze(bytes).map_err(|e| {
        let extra = notes.first().map(|n| format!("; {n}")).unwrap_or_default();
        Error::new(
            ExitKind::BadInput,
            format!("{addr}: the ROM read from the device is not usable: {e}{extra}; nothing was written"),
        )
    })
}

/// The device fd a ROM region is read through, with what keeps it usable.
enum Opened<F> {
    Legacy { _attached: Attached<F>, dev: F },
    Cdev(Session<F>),
}

impl<F> Opened<F> {
    fn dev(&self) -> Option<&F> {
        match self {
            Opened::Legacy { dev, .. } => Some(dev),
            Opened::Cdev(s) => s.devices.first().map(|d| &d.fd),
        }
    }
}

/// The ROM region of `addr` (on vfio-pci) through the backend `choice` resolves to, attached by
/// the one attach sequence: the legacy group and container, or the device cdev bound to an
/// iommufd. Both open the device (vfio-pci resets it).
pub fn via_vfio<V: IommufdOps>(
    host: &Host,
    ops: &V,
    addr: &PciAddress,
    choice: BackendChoice,
) -> DumpResult<Dump> {
    let drv = host.driver(addr)?;
    if drv.as_deref() != Some(super::bind::VFIO_PCI) {
        return Err(Error::new(
            ExitKind::Usage,
            format!(
                "{addr} is on {}, not vfio-pci: bind it first (`vfiotool bind {addr}`) or use --via sysfs",
                drv.as_deref().unwrap_or("no driver")
            ),
        ));
    }
    let group = host
        .iommu_group(addr)?
        .ok_or_else(|| Error::new(ExitKind::System, format!("{addr} has no IOMMU group")))?;
    let devices = [*addr];
    let backend = choice.resolve(host, &devices, false, true).backend;
    let target = attach::Group {
        host,
        group,
        devices: &devices,
    };
    // The one attach sequence (the proof's): API version checked, group node retried, or the
    // cdev found, checked, bound and attached.
    let mut facts = AttachFacts::default();
    let mut steps = Vec::new();
    let attached = attach::attach(ops, backend, &target, &mut facts, &mut steps).map_err(|e| match e {
        AttachError::NotViable { .. } => Error::new(
            ExitKind::VerdictNotMet,
            format!("{addr}: {e}; bind the whole group first"),
        ),
        AttachError::Cdev(ref c) => {
            let kind = match c.errno {
                Some(nix::libc::EPERM) | Some(nix::libc::EBUSY) => ExitKind::VerdictNotMet,
                _ => ExitKind::System,
            };
            Error::new(kind, format!("{addr}: {e}"))
        }
        AttachError::OpenContainer { .. }
        | AttachError::ApiVersion { .. }
        | AttachError::NoType1
        | AttachError::OpenGroup { .. }
        | AttachError::GroupStatus { .. }
        | AttachError::SetContainer { .. }
        | AttachError::SetIommu { .. } => {
            Error::new(ExitKind::System, format!("{addr}: {}: {e}", e.step().name()))
        }
    })?;
    let opened = match attached {
        Attached::Iommufd(s) => Opened::Cdev(s),
        Attached::Legacy { ref group, .. } => {
            let dev = ops.device_fd(group, &addr.to_string()).map_err(|e| {
                Error::new(ExitKind::System, format!("{addr}: VFIO_GROUP_GET_DEVICE_FD: {e}"))
            })?;
            Opened::Legacy {
                _attached: attached,
                dev,
            }
        }
    };
    read_region(ops, addr, opened)
}

fn read_region<V: VfioOps>(ops: &V, addr: &PciAddress, opened: Opened<V::Fd>) -> DumpResult<Dump> {
    let sys = |what: &str, e: io::Error| Error::new(ExitKind::System, format!("{addr}: {what}: {e}"));
    let dev = opened.dev().ok_or_else(|| {
        Error::new(
            ExitKind::System,
            format!("{addr}: the attach left no device open"),
        )
    })?;
    let region = ops
        .region_info(dev, ioctl::PCI_ROM_REGION_INDEX)
        .map_err(|e| sys("VFIO_DEVICE_GET_REGION_INFO(ROM)", e))?;
    if region.size == 0 {
        return Err(Error::new(
            ExitKind::BadInput,
            format!("{addr}: the VFIO ROM region is empty: the device has no valid ROM (no 55AA signature)"),
        ));
    }
    if region.size > MAX_ROM {
        return Err(Error::new(
            ExitKind::BadInput,
            format!("{addr}: ROM region of {} bytes is too large", region.size),
        ));
    }
    let mut bytes = vec![0u8; region.size as usize];
    let mut done = 0usize;
    // Bounded: each successful read advances; a zero-length read ends it.
    while done < bytes.len() {
        let n = ops
            .read_at(dev, &mut bytes[done..], region.offset + done as u64)
            .map_err(|e| sys("read ROM region", e))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    bytes.truncate(done);
    let analysis = analyze(addr, &bytes, &[])?;
    let end = analysis
        .images
        .iter()
        .filter(|i| i.reachable)
        .map(|i| i.offset.saturating_add(i.length))
        .max()
        .unwrap_or(bytes.len())
        .min(bytes.len());
    let trimmed = bytes.len() - end;
    let mut notes = Vec::new();
    let via_note = match &opened {
        Opened::Legacy { .. } => {
            "read through the legacy VFIO group and container (backend legacy)".to_string()
        }
        Opened::Cdev(s) => {
            let d = s.devices.first();
            format!(
                "read through the device cdev {} bound to iommufd (backend iommufd, devid {}, IOAS {})",
                d.map_or("?", |d| d.cdev.as_str()),
                d.map_or(0, |d| d.devid),
                s.ioas_id
            )
        }
    };
    if trimmed > 0 {
        if bytes[end..].iter().all(|b| *b == 0xFF) {
            notes.push(format!(
                "removed {trimmed} bytes of 0xFF padding past the last image"
            ));
        } else {
            notes.push(format!(
                "removed {trimmed} bytes past the last image (not all 0xFF)"
            ));
        }
        bytes.truncate(end);
    }
    notes.push(via_note);
    let analysis = analyze(addr, &bytes, &[])?;
    Ok(Dump {
        bytes,
        analysis,
        bar_size: region.size,
        trimmed,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::proof::fake::FakeVfio;
    use super::*;

    #[test]
    fn a_captured_rom_is_read_as_it_is_and_never_written() {
        let t = tempfile::tempdir().unwrap();
        let host = Host::capture(t.path());
        let a = PciAddress::new(0, 0x0b, 0, 0);
        let dir = host.device_dir(&a);
        std::fs::create_dir_all(&dir).unwrap();
        let rom = tiny_rom();
        std::fs::write(dir.join("rom"), &rom).unwrap();
        let d = via_sysfs(&host, &a).unwrap();
        assert_eq!(d.bytes, rom);
        assert_eq!(
            std::fs::read(dir.join("rom")).unwrap(),
            rom,
            "the capture was written"
        );
        // A FIFO in its place is refused at once, not waited on.
        std::fs::remove_file(dir.join("rom")).unwrap();
        nix::unistd::mkfifo(&dir.join("rom"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let crate::error::Error {
            kind, message: msg, ..
        } = via_sysfs(&host, &a).err().unwrap();
        assert_eq!(kind, ExitKind::BadInput);
        assert!(msg.contains("not a regular file"), "{msg}");
    }

    /// A minimal x86 image: 55AA, size 1 block, PCIR at 0x20, last-image flag.
    fn tiny_rom() -> Vec<u8> {
        let mut r = vec![0u8; 512];
        r[0] = 0x55;
        r[1] = 0xAA;
        r[2] = 1;
        r[0x18] = 0x20;
        r[0x20..0x24].copy_from_slice(b"PCIR");
        r[0x24] = 0x34;
        r[0x25] = 0x12;
        r[0x2A] = 0x18;
        r[0x30] = 1;
        r[0x35] = 0x80;
        let sum = r.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        r[511] = 0u8.wrapping_sub(sum);
        r
    }

    fn fake_host(driver: &str) -> (tempfile::TempDir, Host, PciAddress) {
        let t = tempfile::tempdir().unwrap();
        let a = PciAddress::new(0, 1, 0, 0);
        let dev = t.path().join("sys/bus/pci/devices").join(a.to_string());
        std::fs::create_dir_all(&dev).unwrap();
        let drv = t.path().join("sys/bus/pci/drivers").join(driver);
        std::fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, dev.join("driver")).unwrap();
        let grp = t.path().join("sys/kernel/iommu_groups/5");
        std::fs::create_dir_all(&grp).unwrap();
        std::os::unix::fs::symlink(&grp, dev.join("iommu_group")).unwrap();
        let host = Host::at(t.path());
        (t, host, a)
    }

    #[test]
    fn vfio_dump_trims_ff_padding_to_the_chain_end() {
        let (_t, host, a) = fake_host("vfio-pci");
        let mut rom = tiny_rom();
        rom.resize(4096, 0xFF);
        let f = FakeVfio {
            group_flags: 1,
            rom_region: 4096,
            rom,
            ..Default::default()
        };
        let d = via_vfio(&host, &f, &a, BackendChoice::Legacy).unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(d.bytes, tiny_rom());
        assert_eq!(d.trimmed, 4096 - 512);
        assert!(d.notes[0].contains("0xFF padding"));
    }

    #[test]
    fn vfio_dump_refuses_a_device_not_on_vfio_pci_and_an_empty_region() {
        let (_t, host, a) = fake_host("nvme");
        let f = FakeVfio::default();
        let e = via_vfio(&host, &f, &a, BackendChoice::Legacy).err().unwrap();
        assert!(e.message.contains("not vfio-pci"), "{}", e.message);
        let (_t, host, a) = fake_host("vfio-pci");
        let f = FakeVfio {
            group_flags: 1,
            ..Default::default()
        };
        let e = via_vfio(&host, &f, &a, BackendChoice::Legacy).err().unwrap();
        assert_eq!(e.kind, ExitKind::BadInput);
        assert!(e.message.contains("no valid ROM"), "{}", e.message);
    }
}
