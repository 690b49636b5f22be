//! `vfiotool config`, `vfiotool completions` and the hidden `manpage`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{ConfigArgs, ConfigTarget, FirmwareChoice, OnOff};
use crate::config::{self, choose, libvirt, proxmox, qemu, Firmware, Function, Passthrough};
use crate::error::{Error, ExitKind, Result};
use crate::fsutil;
use crate::output::{Output, Style};
use crate::pci::address::{AddressSpec, PciAddress};
use crate::pci::device::Device;
use crate::pci::groups::Groups;
use crate::pci::sysfs::SysfsRoot;
use crate::rom;
use crate::vfio::host::Host;
use crate::vfio::romdump;

/// The functions `spec` names, function 0 first, read from sysfs.
pub(crate) fn functions_of(sysfs: &SysfsRoot, spec_text: &str) -> Result<(AddressSpec, Vec<Device>, Groups)> {
    let spec = AddressSpec::parse(spec_text).map_err(|e| Error::usage(e.to_string()))?;
    let groups = Groups::read(sysfs).map_err(Error::from)?;
    let mut devices: Vec<Device> = groups
        .groups
        .iter()
        .flat_map(|g| g.devices.iter())
        .chain(groups.ungrouped.iter())
        .filter(|d| spec.matches(&d.address))
        .cloned()
        .collect();
    devices.sort_by_key(|d| d.address);
    if devices.is_empty() {
        return Err(Error::system(format!(
            "no PCI device {spec_text} in {} (see `vfiotool list`)",
            sysfs.pci_devices_dir().display()
        )));
    }
    Ok((spec, devices, groups))
}

/// Other endpoints in the devices' IOMMU groups: they must go to vfio-pci too, or the group is
/// not viable.
fn group_siblings(groups: &Groups, devices: &[Device]) -> Vec<String> {
    let mut out = Vec::new();
    for d in devices {
        if let Some(g) = groups.group_of(&d.address) {
            for e in g.endpoints() {
                let name = e.address.to_string();
                if !devices.iter().any(|x| x.address == e.address) && !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// The firmware and why: chosen with --firmware, or from the ROM verdict of --rom, --romfile,
/// or the device's own ROM read through sysfs (function 0; needs root, and the ROM BAR is
/// always disabled again). A device ROM that cannot be read (a GPU in use often reads as
/// zeros, a user cannot enable it) does not stop the configuration: OVMF is assumed, said so,
/// with how to supply a ROM. Also returns the judged ROM's analysis.
fn firmware_for(
    args: &ConfigArgs,
    first: &PciAddress,
    json: bool,
) -> Result<(Firmware, String, Option<rom::RomAnalysis>)> {
    if let Some(choice) = args.firmware {
        let f = match choice {
            FirmwareChoice::Ovmf => Firmware::Ovmf,
            FirmwareChoice::Seabios => Firmware::Seabios,
        };
        return Ok((f, "chosen with --firmware".into(), None));
    }
    let (analysis, source) = match args.rom.as_ref().or(args.romfile.as_ref()) {
        Some(rom_path) => {
            // The card a ROM file is given to: SeaBIOS's id match and the GOP judgement use it.
            // Only needed here: with --firmware nothing is judged, and the device's own ROM is
            // judged by the ids it carries.
            let card =
                crate::pci::device::Device::read(&crate::host::HostRoot::from_args(&args.root).sysfs, first)
                    .ok()
                    .map(|d| super::rom::card_of(&d));
            let bytes = fsutil::read_input(rom_path)?;
            let analysis = rom::analyze_for(&bytes, card.as_ref())
                .map_err(|e| Error::bad_input(format!("{}: {e}", rom_path.display())))?;
            (analysis, rom_path.display().to_string())
        }
        None if args.root.sysfs_root.is_some() && args.root.root.is_none() => {
            return Err(Error::usage(
                "with --sysfs-root alone the device's ROM cannot be read: pass --rom FILE or --firmware ovmf|seabios",
            ));
        }
        None => {
            let host = Host::from_args(&args.root).with_progress(json);
            match romdump::via_sysfs(&host, first) {
                Ok(dump) => (dump.analysis, format!("the ROM of {first}")),
                Err(Error { message, .. }) => {
                    return Ok((
                        Firmware::Ovmf,
                        format!(
                            "the ROM of {first} could not be read ({message}): OVMF assumed, as every GPU since about 2014 carries a UEFI GOP driver; to know, dump it while no driver uses the card (`vfiotool rom dump {first} -o gpu.rom`, or a vendor tool) and pass --rom gpu.rom, or choose with --firmware ovmf|seabios"
                        ),
                        None,
                    ));
                }
            }
        }
    };
    let mut line = analysis.verdict.lines.first().cloned().unwrap_or_default();
    if let Some(m) = analysis.device_match.as_ref().filter(|m| !m.matches) {
        line = format!("{line}; {}", m.line);
    }
    let f = if analysis.verdict.uefi_gop {
        Firmware::Ovmf
    } else {
        Firmware::Seabios
    };
    Ok((f, format!("{source}: {line}"), Some(analysis)))
}

/// A --romfile must be a ROM firmware can load: it parses, and no dump header precedes the
/// first image (firmware looks for 55AA at offset 0).
fn check_romfile(path: &Path) -> Result<()> {
    let bytes = fsutil::read_input(path)?;
    let analysis = rom::analyze(&bytes)
        .map_err(|e| Error::bad_input(format!("--romfile {}: not an option ROM: {e}", path.display())))?;
    if analysis.verdict.nvidia_header {
        return Err(Error::bad_input(format!(
            "--romfile {}: an NVIDIA dump header precedes the first image, so firmware would not find it; cut it with `vfiotool rom patch {} -o PATCHED.rom` and pass that",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Where `rom patch` should write the header-less copy of `rom`: beside it, `NAME.patched.rom`.
fn patched_name(rom: &Path) -> PathBuf {
    let stem = rom
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gpu".into());
    rom.with_file_name(format!("{stem}.patched.rom"))
}

/// This node's name as Proxmox knows it: the short host name.
fn node_name(args: &ConfigArgs) -> Result<String> {
    if let Some(n) = &args.node {
        return Ok(n.clone());
    }
    // Through the host root's bounded reader: a captured tree is untrusted (a FIFO in place of
    // etc/hostname must not hang `config`).
    let root = crate::host::HostRoot::from_args(&args.root);
    let (read, path) = if args.root.root.is_some() {
        (root.read_file("etc/hostname"), root.path("etc/hostname"))
    } else {
        (
            root.read_proc("sys/kernel/hostname"),
            root.proc_path("sys/kernel/hostname"),
        )
    };
    let text = match read {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(Error::system(format!(
                "{}: missing; pass --node NAME (the Proxmox node name)",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Error::system(format!(
                "{e}; pass --node NAME (the Proxmox node name)"
            )))
        }
    };
    let name = text.trim().split('.').next().unwrap_or_default().to_string();
    config::mapping::check_node(&name)
        .map_err(|e| Error::usage(format!("{e}; read from {}: pass --node NAME", path.display())))?;
    Ok(name)
}

/// Everything the options say that can be refused before anything is read or printed.
fn check_args(args: &ConfigArgs) -> Result<()> {
    if let Some(id) = &args.vendor_id {
        config::check_vendor_id(id).map_err(|e| Error::usage(e.to_string()))?;
    }
    if let Some(v) = args.vmid {
        // pve-common's pve-vmid: ^[1-9][0-9]{2,8}$
        if !(100..=999_999_999).contains(&v) {
            return Err(Error::usage(format!(
                "--vmid {v}: Proxmox VM ids run from 100 to 999999999"
            )));
        }
    }
    if let Some(id) = &args.mapping {
        if args.target != ConfigTarget::Proxmox {
            return Err(Error::usage(
                "--mapping is a Proxmox cluster mapping: use it with --for proxmox",
            ));
        }
        config::mapping::check_id(id).map_err(|e| Error::usage(e.to_string()))?;
    }
    if let Some(n) = &args.node {
        config::mapping::check_node(n).map_err(|e| Error::usage(e.to_string()))?;
    }
    if let Some(name) = &args.domain {
        if args.target != ConfigTarget::Libvirt {
            return Err(Error::usage(
                "--domain prints a libvirt domain: use it with --for libvirt",
            ));
        }
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            return Err(Error::usage(format!(
                "--domain {name:?}: libvirt refuses empty names, `/` and control characters"
            )));
        }
    }
    if args.iommufd && args.target == ConfigTarget::Proxmox {
        return Err(Error::usage(
            "--iommufd: qemu-server has no iommufd option for hostpci; use it with --for qemu or --for libvirt",
        ));
    }
    if let Some(rf) = &args.romfile {
        if args.target == ConfigTarget::Proxmox {
            proxmox::check_romfile_name(rf).map_err(|e| Error::usage(e.to_string()))?;
        }
        check_romfile(rf)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ConfigDoc<'a> {
    schema: &'static str,
    device: &'a str,
    #[serde(flatten)]
    generated: &'a config::Generated,
    group_siblings: Vec<String>,
}

pub fn config<W: Write>(args: &ConfigArgs, out: &mut Output<W>) -> Result<ExitKind> {
    check_args(args)?;
    let sysfs = crate::host::HostRoot::from_args(&args.root).sysfs;
    let (spec, named, groups) = functions_of(&sysfs, &args.device)?;
    let named: Vec<Device> = named.into_iter().filter(|d| !d.bridge).collect();
    if named.is_empty() {
        return Err(Error::usage(format!(
            "{}: only bridges there; name an endpoint (see `vfiotool list`)",
            args.device
        )));
    }
    let (devices, functions_choice) = choose::functions(&spec, named, &groups, args.only_function);
    let (firmware, firmware_reason, analysis) = firmware_for(args, &devices[0].address, out.json)?;
    let mut choices: Vec<config::Choice> = functions_choice.into_iter().collect();
    let explicit_primary = match (args.primary, args.no_primary) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let (primary, c) = choose::primary(explicit_primary, &devices[0], firmware);
    choices.push(c);
    choices.extend(choose::hide_kvm(
        args.hide_kvm,
        args.vendor_id.as_deref(),
        &devices[0],
    ));
    let rombar = args.rombar.map(|b| b == OnOff::On);
    choices.extend(choose::rombar(rombar));
    let mut notes = Vec::new();
    let mut romfile = args.romfile.clone();
    match (&romfile, &args.rom, analysis.as_ref()) {
        (Some(rf), _, _) => choices.push(config::Choice {
            option: "romfile",
            value: rf.display().to_string(),
            reason: "--romfile: the VM loads this ROM instead of the card's own".into(),
        }),
        (None, Some(rom), Some(a)) if a.verdict.nvidia_header => {
            let out_path = patched_name(rom);
            notes.push(format!(
                "first cut the dump header: vfiotool rom patch {} -o {}",
                qemu::shell_quote(&rom.to_string_lossy()),
                qemu::shell_quote(&out_path.to_string_lossy())
            ));
            choices.push(config::Choice {
                option: "romfile",
                value: out_path.display().to_string(),
                reason: format!(
                    "{} starts with an NVIDIA dump header that firmware cannot skip: the VM loads the copy `rom patch` writes without it",
                    rom.display()
                ),
            });
            romfile = Some(out_path);
        }
        _ => {}
    }
    let passthrough = Passthrough {
        functions: devices
            .iter()
            .map(|d| Function {
                address: d.address,
                class_code: d.class_code,
            })
            .collect(),
        firmware,
        firmware_reason,
        romfile,
        settings: config::Settings {
            primary,
            hide_kvm: args.hide_kvm,
            vendor_id: args.vendor_id.clone(),
            rombar,
            iommufd: args.iommufd && iommufd_usable(args, &mut notes),
        },
        choices,
    };
    let mapping = match &args.mapping {
        Some(id) => {
            let node = node_name(args)?;
            let (entries, map_notes) = choose::map_entries(&node, &devices, &groups);
            notes.extend(map_notes);
            Some(config::mapping::build(
                &crate::host::HostRoot::from_args(&args.root).base,
                id,
                &node,
                &entries,
            )?)
        }
        None => None,
    };
    let mut generated = match args.target {
        ConfigTarget::Proxmox => proxmox::generate(&passthrough, args.vmid, args.index, mapping.as_ref()),
        ConfigTarget::Libvirt => {
            let spec = args.domain.as_ref().map(|name| libvirt::DomainSpec {
                name: name.clone(),
                memory_mib: args.memory,
                vcpus: args.vcpus,
            });
            libvirt::generate(&passthrough, spec.as_ref())
        }
        ConfigTarget::Qemu => qemu::generate(
            &passthrough,
            qemu::find_ovmf(&crate::host::HostRoot::from_args(&args.root).base),
        ),
    };
    notes.append(&mut generated.notes);
    generated.notes = notes;
    let siblings = group_siblings(&groups, &devices);
    if !siblings.is_empty() {
        generated.notes.push(format!(
            "its IOMMU group also holds {}: bind them to vfio-pci too (`vfiotool bind --group`), or the VM will not start (group not viable)",
            siblings.join(", ")
        ));
    }
    if out.json {
        out.json_doc(&ConfigDoc {
            schema: "vfiotool.config/1",
            device: &args.device,
            generated: &generated,
            group_siblings: siblings,
        })
        .map_err(Error::output)?;
        return Ok(ExitKind::Success);
    }
    print_config(args, &generated, out)
}

/// A comment line in the target's own syntax, so the whole output can be saved and used: `#`
/// for Proxmox and shell, an XML comment for libvirt (which may not contain `--`).
fn comment(target: ConfigTarget, text: &str) -> String {
    match target {
        ConfigTarget::Libvirt => format!("<!-- {} -->", text.replace("--", "- -")),
        ConfigTarget::Proxmox | ConfigTarget::Qemu => format!("# {text}"),
    }
}

fn print_config<W: Write>(
    args: &ConfigArgs,
    generated: &config::Generated,
    out: &mut Output<W>,
) -> Result<ExitKind> {
    let t = args.target;
    let addrs: Vec<String> = generated.functions.iter().map(PciAddress::to_string).collect();
    let mut dim = vec![format!(
        "{} for {} ({}): machine q35, firmware {}, because {}",
        generated.target,
        args.device,
        addrs.join(" "),
        generated.firmware.name(),
        generated.firmware_reason
    )];
    for c in &generated.options {
        dim.push(format!("{}: {}, because {}", c.option, c.value, c.reason));
    }
    let dim: Vec<String> = dim
        .iter()
        .map(|l| out.paint(Style::Dim, &comment(t, l)))
        .collect();
    let w = &mut out.out;
    let io = Error::output;
    for l in dim {
        writeln!(w, "{l}").map_err(io)?;
    }
    if let Some(m) = &generated.mapping {
        writeln!(w, "# {} (section {}):", config::mapping::PCI_CFG, m.id).map_err(io)?;
        write!(w, "{}", m.section).map_err(io)?;
        writeln!(w, "# /etc/pve/qemu-server/VMID.conf:").map_err(io)?;
    }
    write!(w, "{}", generated.text).map_err(io)?;
    if !generated.text.ends_with('\n') {
        writeln!(w).map_err(io)?;
    }
    if let Some(cmd) = &generated.command {
        writeln!(w, "{cmd}").map_err(io)?;
    }
    for note in &generated.notes {
        writeln!(w, "{}", comment(t, &format!("note: {note}"))).map_err(io)?;
    }
    Ok(ExitKind::Success)
}

/// `--iommufd`: whether the target can take it here; a note says why not, or what it needs.
fn iommufd_usable(args: &ConfigArgs, notes: &mut Vec<String>) -> bool {
    match args.target {
        ConfigTarget::Qemu => {
            notes.push(
                "iommufd backend: needs QEMU 9.0+ and a host kernel with iommufd and the VFIO device \
                 cdev (`vfiotool check`: iommufd, iommufd_qemu); this form starts a VM with QEMU \
                 10.0 on a 6.12 kernel in vfiotool's test guest"
                    .into(),
            );
            true
        }
        ConfigTarget::Libvirt => {
            // The bounded reader: a captured tree's schema file may be anything (a FIFO too).
            let rng = crate::host::HostRoot::from_args(&args.root)
                .read_file("usr/share/libvirt/schemas/domaincommon.rng")
                .ok()
                .flatten();
            let has = rng
                .as_deref()
                .is_some_and(crate::host::check::libvirt_schema_has_iommufd);
            if !has {
                notes.push(format!(
                    "--iommufd: the installed libvirt's schema ({}) has no iommufd attribute, so the \
                     hostdevs keep the legacy VFIO interface; a newer libvirt has <driver iommufd='yes'/>",
                    if rng.is_some() {
                        "/usr/share/libvirt/schemas/domaincommon.rng"
                    } else {
                        "not installed"
                    }
                ));
            }
            has
        }
        ConfigTarget::Proxmox => false,
    }
}
