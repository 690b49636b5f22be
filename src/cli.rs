//! The command-line definition (clap derive). It lives in the library so that the man page and
//! shell completions can be generated from the same definition the binary parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  vfiotool check                      is this host ready for passthrough?
  vfiotool groups                     IOMMU groups and whether each is isolated
  vfiotool rom parse gpu.rom          does this vBIOS carry a UEFI GOP driver?
  vfiotool rom patch nv.rom -o fixed.rom   strip the NVIDIA dump header
  vfiotool bind 01:00                 rebind every function of 01:00 to vfio-pci and prove it

Exit codes: 0 ok, 1 verdict not met, 2 usage, 3 bad input data, 4 system error,
            5 failed and rolled back, 6 rollback incomplete (see README.md)";

#[derive(Debug, Parser)]
#[command(name = "vfiotool", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print one JSON document per report instead of human output (schemas in docs/json.md).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse, dump and patch PCI option ROMs (vBIOS).
    #[command(
        subcommand,
        after_help = "Examples:
  vfiotool rom dump 01:00.0 -o gpu.rom     read the GPU's ROM (root)
  vfiotool rom parse gpu.rom               UEFI GOP reachable -> OVMF, or SeaBIOS?
  vfiotool rom patch nv.rom -o fixed.rom   strip an NVIDIA dump header"
    )]
    Rom(RomCommand),
    /// Rebind a device (every function of a slot) to vfio-pci and prove its group with the VFIO ioctls.
    #[command(after_help = "Examples:
  sudo vfiotool bind 01:00              every function of 0000:01:00, then the proof
  sudo vfiotool bind 01:00 --dry-run    print each sysfs write and ioctl, change nothing
  sudo vfiotool bind 03:00.0 --group    also take the other devices of its IOMMU group
  sudo vfiotool bind 01:00 --json | jq .viable

Exit: 0 bound and proven, 1 refused (nothing changed), 4 system error (not root, missing
device, vfio-pci missing), 5 failed and rolled back, 6 rollback incomplete. See docs/bind.md.")]
    Bind(BindArgs),
    /// Give a device back to the driver it had before `bind` (or the kernel's default).
    #[command(
        visible_alias = "restore",
        after_help = "Examples:
  sudo vfiotool unbind 01:00
  sudo vfiotool restore 0000:01:00.1 --dry-run"
    )]
    Unbind(UnbindArgs),
    /// Is this host ready for VFIO passthrough? One line per check, with the fix for this host.
    #[command(after_help = "Examples:
  vfiotool check
  vfiotool check --json | jq '.checks[] | select(.status != \"ok\")'
  vfiotool check --root bug-report/      check a tree saved by `vfiotool capture`

Exit: 0 every needed check passed (warnings allowed), 1 a needed check failed.")]
    Check(CheckArgs),
    /// PCI devices like `lspci -nnk`, with IOMMU group, reset methods, boot_vga and ROM.
    #[command(after_help = "Examples:
  vfiotool list
  vfiotool list --class gpu
  vfiotool list 01:00                   every function of 0000:01:00
  vfiotool list --group 13 --json
  vfiotool list --sysfs-root /tmp/sys   a sysfs tree saved elsewhere")]
    List(ListArgs),
    /// IOMMU groups, their devices and whether each is isolated.
    #[command(after_help = "Examples:
  vfiotool groups
  vfiotool groups --json | jq '.groups[] | select(.verdict == \"shared\")'
  vfiotool groups --root bug-report/")]
    Groups(GroupsArgs),
    /// Save what check, list and groups read (sysfs, /proc, /etc) into a directory for a bug report.
    #[command(after_help = "Examples:
  sudo vfiotool capture host-tree/ && tar czf host-tree.tgz host-tree/
  vfiotool groups --root host-tree/     the same view, later or elsewhere")]
    Capture(CaptureArgs),
    /// Find known VFIO failures in pasted logs and give the cause and the fix for this host.
    #[command(after_help = "Examples:
  journalctl -b | vfiotool explain -        every known failure in this boot's log
  vfiotool explain task.log                 a Proxmox task log, QEMU or libvirt error
  vfiotool explain --json err.txt | jq '.causes[0].fix'
  vfiotool explain --root bug-report/ err.txt   fixes from a captured host
  sudo vfiotool explain --kernel-log        what this boot's kernel log shows

Exit: 0 at least one cause recognised, 1 nothing recognised, 3 binary or empty input,
4 the file cannot be read. Reads at most 8 MiB. Cause ids: docs/explain.md.")]
    Explain(ExplainArgs),
    /// Print Proxmox, libvirt or QEMU configuration for passing a device through.
    #[command(after_help = "Examples:
  vfiotool config 01:00 --for proxmox --vmid 100 --rom gpu.rom
  vfiotool config 01:00 --for libvirt --firmware ovmf
  vfiotool config 0000:0a:00 --for qemu --romfile /usr/share/kvm/patched.rom
  vfiotool config 01:00 --for libvirt --domain win11 --primary --hide-kvm
  vfiotool config 01:00 --for proxmox --mapping gpu --node pve1")]
    Config(ConfigArgs),
    /// Bind a device to vfio-pci at every boot, by address (not by vendor:device ID).
    #[command(after_help = "Examples:
  vfiotool persist 01:00 --dry-run      show the files and the diff
  vfiotool persist 01:00 --yes          write them and rebuild the initramfs
  vfiotool persist 01:00 --kvm-ignore-msrs --disable-vga
  vfiotool persist --remove             undo exactly what persist did")]
    Persist(PersistArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:
  vfiotool completions bash > /etc/bash_completion.d/vfiotool")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) generated from this command line definition, or with --out
    /// write one page per command (vfiotool.1, vfiotool-rom-parse.1, ...) into DIR.
    #[command(hide = true)]
    Manpage {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The VM manager to write configuration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigTarget {
    Proxmox,
    Libvirt,
    Qemu,
}

/// A switch given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// A firmware choice given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirmwareChoice {
    Ovmf,
    Seabios,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The device: 01:00 (all functions), 01:00.0 or 0000:01:00.0.
    pub device: String,

    /// Which VM manager the configuration is for.
    #[arg(long = "for", value_enum)]
    pub target: ConfigTarget,

    /// Judge the firmware by this ROM file (e.g. from `vfiotool rom dump`).
    #[arg(long, value_name = "FILE")]
    pub rom: Option<PathBuf>,

    /// A ROM file the VM should load instead of the card's own (e.g. a patched NVIDIA dump).
    #[arg(long, value_name = "PATH")]
    pub romfile: Option<PathBuf>,

    /// Choose the firmware instead of deriving it from the ROM verdict.
    #[arg(long, value_enum)]
    pub firmware: Option<FirmwareChoice>,

    /// Proxmox VM id for the `qm set` command.
    #[arg(long)]
    pub vmid: Option<u32>,

    /// Proxmox hostpci index (hostpci0..hostpci15).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=15))]
    pub index: u8,

    /// The passed GPU is the VM's display (no emulated VGA; Proxmox x-vga=1). Default: on for
    /// the host's boot GPU and for a SeaBIOS verdict.
    #[arg(long, overrides_with = "no_primary")]
    pub primary: bool,

    /// Keep the emulated display; the passed GPU is a second one.
    #[arg(long, overrides_with = "primary")]
    pub no_primary: bool,

    /// Hide KVM from the guest and set a Hyper-V vendor id (NVIDIA Code 43 before driver 465).
    #[arg(long)]
    pub hide_kvm: bool,

    /// The Hyper-V vendor id with --hide-kvm: 1 to 12 letters or digits (default: proxmox).
    #[arg(long, value_name = "STR", requires = "hide_kvm")]
    pub vendor_id: Option<String>,

    /// Show (on) or hide (off) the device's ROM BAR in the guest.
    #[arg(long, value_enum, value_name = "on|off")]
    pub rombar: Option<OnOff>,

    /// Pass only the named function, not the card's other functions in its IOMMU group.
    #[arg(long)]
    pub only_function: bool,

    /// libvirt: print a whole domain named NAME that `virsh define` takes (default: elements
    /// to paste into `virsh edit`).
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,

    /// libvirt --domain: memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(64..))]
    pub memory: u32,

    /// libvirt --domain: virtual CPUs.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub vcpus: u32,

    /// Proxmox: pass the card through the cluster mapping ID (/etc/pve/mapping/pci.cfg);
    /// identical cards on this node become alternatives.
    #[arg(long, value_name = "ID")]
    pub mapping: Option<String>,

    /// Proxmox --mapping: this node's name (default: the host name).
    #[arg(long, value_name = "NAME", requires = "mapping")]
    pub node: Option<String>,

    /// QEMU: use QEMU's iommufd backend (`-object iommufd` and `vfio-pci,...,iommufd=`; QEMU 9.0+,
    /// a kernel with iommufd and the VFIO device cdev). libvirt: `<driver iommufd='yes'/>` when the
    /// installed libvirt's schema has it (otherwise a note).
    #[arg(long)]
    pub iommufd: bool,

    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args)]
pub struct PersistArgs {
    /// The device: 01:00 (all functions), 01:00.0 or 0000:01:00.0. With --remove and no
    /// device, every persisted device is removed.
    #[arg(required_unless_present = "remove")]
    pub device: Option<String>,

    /// Undo: take the device (or all) out of the boot-time binding.
    #[arg(long)]
    pub remove: bool,

    /// Show the files and the diff, write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also run the initramfs rebuild command (never run without it).
    #[arg(long)]
    pub yes: bool,

    /// Also write `options kvm ignore_msrs=1 report_ignored_msrs=0` (guests that probe MSRs
    /// KVM does not emulate, e.g. some Windows tools, otherwise crash).
    #[arg(long, conflicts_with = "remove")]
    pub kvm_ignore_msrs: bool,

    /// Also write `options vfio-pci disable_vga=1` (vfio-pci stays out of the host's VGA
    /// arbitration; for a non-boot GPU with a host display on another card).
    #[arg(long, conflicts_with = "remove")]
    pub disable_vga: bool,

    /// --root DIR: write below DIR instead of / (a scratch root) and read DIR/sys.
    #[command(flatten)]
    pub root: RootArgs,
}

/// Where the host's files are read from (default: the running host).
#[derive(Debug, Clone, Default, Args)]
pub struct RootArgs {
    /// Read a captured host under DIR (DIR/sys, DIR/proc, DIR/etc, DIR/lib/modules).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Read sysfs from DIR instead of /sys (the rest from --root or the live host), like
    /// `lspci -A linux-sysfs -O sysfs.path=DIR/bus/pci`.
    #[arg(long, value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
}

// Resolved by `host::HostRoot::from_args`, the one place that turns these options into a root.

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this device: DDDD:BB:DD.F, BB:DD.F, or BB:DD for every function of a slot.
    #[arg(value_name = "ADDRESS")]
    pub address: Option<String>,

    /// Only devices of this class.
    #[arg(long, value_enum)]
    pub class: Option<crate::pci::device::ClassFilter>,

    /// Only devices in IOMMU group N.
    #[arg(long, value_name = "N")]
    pub group: Option<u32>,

    /// Names from this pci.ids instead of the system's (/usr/share/hwdata/pci.ids, ...).
    #[arg(long, value_name = "FILE")]
    pub pci_ids: Option<PathBuf>,

    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// Names from this pci.ids instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub pci_ids: Option<PathBuf>,

    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Directory to write the tree into (created; must be empty if it exists).
    #[arg(value_name = "DIR")]
    pub output: PathBuf,

    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The text to explain; `-` or nothing reads standard input.
    #[arg(value_name = "FILE", conflicts_with = "kernel_log")]
    pub file: Option<PathBuf>,

    /// Explain the kernel log (/dev/kmsg, root; or dev/kmsg under --root) instead of FILE.
    #[arg(long)]
    pub kernel_log: bool,

    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Subcommand)]
pub enum RomCommand {
    /// Walk a ROM's image chain and tell whether a UEFI GOP driver is reachable.
    #[command(after_help = "Examples:
  vfiotool rom parse gpu.rom
  vfiotool rom parse --require-gop gpu.rom && echo use OVMF
  cat gpu.rom | vfiotool rom parse --json -")]
    Parse(RomParseArgs),
    /// Strip what comes before the first valid image (NVIDIA dump headers); never in place.
    #[command(after_help = "Examples:
  vfiotool rom patch nvflash-dump.rom -o gpu.rom
  vfiotool rom patch --fix-checksum broken.rom -o fixed.rom")]
    Patch(RomPatchArgs),
    /// Read a device's option ROM (sysfs, or VFIO when on vfio-pci), analyse it, write it atomically.
    #[command(after_help = "Examples:
  sudo vfiotool rom dump 01:00.0 -o gpu.rom
  sudo vfiotool rom dump 01:00.0 --via vfio -o gpu.rom   a device bound to vfio-pci
  sudo vfiotool rom dump 01:00.0 --json                  analyse only, write nothing")]
    Dump(RomDumpArgs),
    /// Take a ROM apart: every image to its own file, every EFI driver to a .efi, a manifest.
    #[command(after_help = "Examples:
  vfiotool rom extract gpu.rom -o gpu-parts
  vfiotool rom extract --json gpu.rom -o gpu-parts   the manifest on stdout too")]
    Extract(RomExtractArgs),
    /// Put a ROM together from images and EFI drivers (e.g. add a GOP driver to a legacy vBIOS).
    #[command(after_help = "Examples:
  vfiotool rom build --base legacy.rom --efi GopDriver.efi --compress -o gop.rom
  vfiotool rom build --x86 vbios.rom --efi GopDriver.efi --vendor 1002 --device 67df --class 030000 -o gop.rom
  vfiotool rom build --image 00-x86-10de-1b80.rom --image 01-efi-10de-1b80.rom -o rebuilt.rom")]
    Build(RomBuildArgs),
}

#[derive(Debug, Args)]
pub struct RomParseArgs {
    /// ROM files to analyse; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Exit with code 1 unless every file has a reachable UEFI GOP driver.
    #[arg(long)]
    pub require_gop: bool,

    /// The card the ROM is for (01:00.0): compare the ROM's ids with the card's (sysfs, or
    /// --root/--sysfs-root) the way SeaBIOS does, and judge GOP by the card's class.
    #[arg(long, value_name = "BDF")]
    pub device: Option<String>,

    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args)]
pub struct RomPatchArgs {
    /// The ROM to read (never modified).
    #[arg(value_name = "IN")]
    pub input: PathBuf,

    /// Where to write the patched ROM (atomically; refused if it is IN).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Replace an existing OUT.
    #[arg(long)]
    pub force: bool,

    /// Correct the checksum byte of x86 images whose bytes do not sum to zero.
    #[arg(long)]
    pub fix_checksum: bool,

    /// Show what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct BindArgs {
    /// The device: 01:00 (all functions), 01:00.0 or 0000:01:00.0.
    pub device: String,

    /// Also bind every other endpoint of the IOMMU group (bridges are never bound).
    #[arg(long)]
    pub group: bool,

    /// Proceed despite a refusal (a host-critical device, group members on host drivers).
    #[arg(long)]
    pub force: bool,

    /// Print each sysfs write and ioctl that would be made; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also open each device (vfio-pci resets it!) and read DEVICE_GET_INFO and the ROM size.
    #[arg(long)]
    pub open_device: bool,

    /// Give up on a driver unbind (or any sysfs write) that blocks longer than SECS.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,

    /// Which kernel interface proves the group: the device cdev through iommufd (Linux 6.6+;
    /// binding it resets the device), the legacy group/container, or auto (the cdev when the
    /// kernel has it, legacy otherwise).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: VfioBackend,
}

/// The VFIO interface `bind` proves through and `rom dump --via vfio` reads through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VfioBackend {
    /// `/dev/vfio/vfio` and `/dev/vfio/N`.
    Legacy,
    /// `/dev/iommu` and `/dev/vfio/devices/vfioN`.
    Iommufd,
    /// iommufd when `/dev/iommu` exists and the device has a cdev, legacy otherwise.
    Auto,
}

#[derive(Debug, Args)]
pub struct UnbindArgs {
    /// The device: 01:00 (all functions), 01:00.0 or 0000:01:00.0.
    #[arg(required_unless_present = "all")]
    pub device: Option<String>,

    /// Give back every device that has a bind record under /run/vfiotool/devices (after a
    /// bind that was killed, or to undo every bind).
    #[arg(long, conflicts_with = "device")]
    pub all: bool,

    /// Print each sysfs write that would be made; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Give up on a driver unbind that blocks longer than SECS.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
}

/// Where `rom dump` reads the ROM from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpVia {
    /// The sysfs `rom` attribute (works on any driver).
    Sysfs,
    /// The VFIO ROM region (the device must be on vfio-pci; opening it resets the device).
    Vfio,
}

#[derive(Debug, Args)]
pub struct RomDumpArgs {
    /// The function: 01:00.0 or 0000:01:00.0.
    pub device: String,

    /// Where to write the ROM (atomically). Without it the ROM is analysed and nothing is written.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How to read it.
    #[arg(long, value_enum, default_value = "sysfs")]
    pub via: DumpVia,

    /// With --via vfio: which VFIO interface to open the device through.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: VfioBackend,

    /// Replace an existing FILE.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RomExtractArgs {
    /// The ROM to take apart (never modified); `-` reads standard input.
    #[arg(value_name = "ROM")]
    pub input: PathBuf,

    /// The directory to create (atomically: it appears complete or not at all).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

/// One `--x86`/`--image`/`--efi` file with its place on the command line.
#[derive(Debug, Clone)]
pub struct OrderedPath {
    /// Its position among all image arguments: `rom build` keeps the order they were given in.
    pub seq: usize,
    pub path: PathBuf,
}

/// clap parses values in command-line order, so a counter taken here orders the three
/// repeatable image options among each other.
fn ordered_path(s: &str) -> std::result::Result<OrderedPath, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    if s.is_empty() {
        return Err("empty file name".into());
    }
    Ok(OrderedPath {
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        path: PathBuf::from(s),
    })
}

fn hex_u16(s: &str) -> std::result::Result<u16, String> {
    u16::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| format!("{s:?}: not a 4-digit hex id ({e})"))
}

fn hex_class(s: &str) -> std::result::Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0x"), 16) {
        Ok(v) if v <= 0xFF_FFFF => Ok(v),
        Ok(_) => Err(format!("{s:?}: a class code is 3 bytes (e.g. 030000)")),
        Err(e) => Err(format!("{s:?}: not a hex class code ({e})")),
    }
}

#[derive(Debug, Args)]
pub struct RomBuildArgs {
    /// Where to write the ROM (atomically; refused if it is an input).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Start from this ROM's reachable images (e.g. a legacy-only vBIOS) and append the rest.
    #[arg(long, value_name = "ROM")]
    pub base: Option<PathBuf>,

    /// A legacy x86 option ROM image (code type 0), in the order given. Repeatable.
    #[arg(long = "x86", value_name = "FILE", value_parser = ordered_path)]
    pub x86: Vec<OrderedPath>,

    /// An option ROM image of any type taken as it is (e.g. a file from `rom extract`). Repeatable.
    #[arg(long = "image", value_name = "FILE", value_parser = ordered_path)]
    pub image: Vec<OrderedPath>,

    /// An EFI driver (PE file) to wrap into an EFI image, in the order given. Repeatable.
    #[arg(long = "efi", value_name = "FILE.efi", value_parser = ordered_path)]
    pub efi: Vec<OrderedPath>,

    /// PCI vendor id (hex) of the EFI images built from --efi (default: the first image's).
    #[arg(long, value_name = "VVVV", value_parser = hex_u16)]
    pub vendor: Option<u16>,

    /// PCI device id (hex) of the EFI images built from --efi (default: the first image's).
    #[arg(long, value_name = "DDDD", value_parser = hex_u16)]
    pub device: Option<u16>,

    /// PCI class code (hex, e.g. 030000) of the EFI images built from --efi (default: the first image's).
    #[arg(long, value_name = "CCCCCC", value_parser = hex_class)]
    pub class: Option<u32>,

    /// Store EFI drivers compressed (the UEFI compression algorithm, our own encoder).
    #[arg(long)]
    pub compress: bool,

    /// The firmware verdict the result must have (ovmf, seabios, none); default: derived from
    /// the inputs (ovmf when an x64 GOP driver goes into a display ROM).
    #[arg(long, value_name = "FIRMWARE", value_parser = ["ovmf", "seabios", "none"])]
    pub expect: Option<String>,

    /// Replace an existing OUT.
    #[arg(long)]
    pub force: bool,

    /// Build and check, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}
