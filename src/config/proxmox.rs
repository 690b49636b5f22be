//! Proxmox VE: the lines of /etc/pve/qemu-server/VMID.conf (`bios:`, `machine:`, `cpu:`,
//! `vga:`, `hostpciN:`) and the `qm set` command that writes them. hostpci syntax, from
//! qemu-server's PVE/QemuServer/PCI.pm: `hostpciN: [host=]DDDD:BB:DD[.F]|mapping=ID,pcie=1,
//! x-vga=1,rombar=0|1,romfile=FILE`, where leaving out `.F` passes every function and
//! `romfile` is a name under /usr/share/kvm/.
//!
//! What qemu-server does with `x-vga=1` (print_hostpci_devices and CPUConfig.pm): it passes
//! `x-vga=on` to QEMU unless `bios: ovmf`, sets `vga: none` unless vga is configured, adds
//! `kvm=off` to the CPU, and for Windows guests adds `hv_vendor_id=proxmox` (the NVIDIA
//! workaround) unless the cpu line names another hv-vendor-id.

use std::path::Path;

use super::mapping::{Mapping, PCI_CFG};
use super::qemu::shell_quote;
use super::{Firmware, Generated, Passthrough};

/// Where Proxmox looks for `romfile=` names.
pub const ROM_DIR: &str = "/usr/share/kvm";

/// A romfile name qemu-server's `romfile` pattern (`[^,;]+`) takes.
pub fn check_romfile_name(rom: &Path) -> Result<(), super::OptionError> {
    let name = rom.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    if name.is_empty() || name.contains([',', ';']) {
        return Err(super::OptionError::RomfileName(rom.to_path_buf()));
    }
    Ok(())
}

/// The `cpu:` value for hidden KVM: `host`, `hidden=1` and the hv-vendor-id of the cpu format.
pub fn cpu_value(p: &Passthrough) -> Option<String> {
    p.vendor_id().map(|id| format!("host,hidden=1,hv-vendor-id={id}"))
}

pub fn generate(p: &Passthrough, vmid: Option<u32>, index: u8, mapping: Option<&Mapping>) -> Generated {
    let mut g = Generated::new("proxmox", p);
    let Some(first) = p.functions.first() else {
        return g;
    };
    let a = first.address;
    let host = match mapping {
        Some(m) => format!("mapping={}", m.id),
        None if p.multifunction() => format!("{:04x}:{:02x}:{:02x}", a.domain, a.bus, a.device),
        None => a.to_string(),
    };
    let mut options = vec![host, "pcie=1".to_string()];
    let x_vga = p.settings.primary && p.first_is_vga();
    if x_vga {
        options.push("x-vga=1".into());
    }
    if let Some(bar) = p.settings.rombar {
        options.push(format!("rombar={}", u8::from(bar)));
    }
    let mut commands = Vec::new();
    if let Some(rom) = &p.romfile {
        let name = rom
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if rom.parent() != Some(Path::new(ROM_DIR)) {
            commands.push(format!(
                "cp {} {}",
                shell_quote(&rom.to_string_lossy()),
                shell_quote(&format!("{ROM_DIR}/{name}"))
            ));
            g.notes.push(format!(
                "Proxmox reads romfile= as a name under {ROM_DIR}/: the cp command puts {} there",
                rom.display()
            ));
        }
        options.push(format!("romfile={name}"));
    }
    let value = options.join(",");
    let mut lines = vec![format!("bios: {}", p.firmware.name()), "machine: q35".to_string()];
    let mut qm = format!("--machine q35 --bios {}", p.firmware.name());
    if let Some(cpu) = cpu_value(p) {
        lines.push(format!("cpu: {cpu}"));
        qm.push_str(&format!(" --cpu {cpu}"));
    }
    if p.settings.primary && !x_vga {
        // x-vga only fits a VGA-class function; a display controller of another class still
        // becomes the only display by dropping the emulated one.
        lines.push("vga: none".into());
        qm.push_str(" --vga none");
    }
    lines.push(format!("hostpci{index}: {value}"));
    qm.push_str(&format!(" --hostpci{index} {}", shell_quote(&value)));
    g.text = lines.join("\n") + "\n";
    let vm = vmid.map(|v| v.to_string()).unwrap_or_else(|| "VMID".into());
    if let Some(m) = mapping {
        commands.push(m.command.clone());
    }
    commands.push(format!("qm set {vm} {qm}"));
    g.command = Some(commands.join("\n"));
    if vmid.is_none() {
        g.notes.push("replace VMID with the VM's id (qm list)".into());
    }
    if x_vga {
        g.notes.push(format!(
            "x-vga=1: qemu-server then sets vga none, adds kvm=off to the CPU and, for Windows guests, hv_vendor_id=proxmox; it passes x-vga=on to QEMU only with SeaBIOS{}",
            if p.firmware == Firmware::Ovmf { " (not here: OVMF uses the card's GOP driver)" } else { "" }
        ));
    }
    if p.firmware == Firmware::Ovmf {
        g.notes.push(format!(
            "OVMF keeps its settings on an EFI disk: qm set {vm} --efidisk0 STORAGE:1,efitype=4m"
        ));
    }
    if let Some(m) = mapping {
        g.notes.push(format!(
            "{PCI_CFG} is shared by the cluster: the pvesh command {} the mapping ({} entr{} for node {}{})",
            if m.exists { "updates" } else { "creates" },
            m.entries.len(),
            if m.entries.len() == 1 { "y" } else { "ies" },
            m.node,
            if m.other_nodes.is_empty() {
                String::new()
            } else {
                format!(", {} kept for other nodes", m.other_nodes.len())
            }
        ));
    }
    g.mapping = mapping.cloned();
    g
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{gpu, primary};
    use super::*;

    #[test]
    fn seabios_primary_gpu_gets_x_vga_and_all_functions() {
        let g = generate(&primary(gpu(Firmware::Seabios, None)), Some(100), 0, None);
        assert_eq!(
            g.text,
            "bios: seabios\nmachine: q35\nhostpci0: 0000:01:00,pcie=1,x-vga=1\n"
        );
        assert_eq!(
            g.command.as_deref(),
            Some("qm set 100 --machine q35 --bios seabios --hostpci0 0000:01:00,pcie=1,x-vga=1")
        );
    }

    #[test]
    fn ovmf_primary_keeps_x_vga_and_romfile_is_named_relative_to_usr_share_kvm() {
        let g = generate(
            &primary(gpu(Firmware::Ovmf, Some("/root/patched.rom"))),
            None,
            1,
            None,
        );
        assert!(g
            .text
            .ends_with("hostpci1: 0000:01:00,pcie=1,x-vga=1,romfile=patched.rom\n"));
        let cmd = g.command.as_deref().unwrap();
        assert!(
            cmd.starts_with(
                "cp /root/patched.rom /usr/share/kvm/patched.rom\nqm set VMID --machine q35 --bios ovmf"
            ),
            "{cmd}"
        );
        assert!(g.notes.iter().any(|n| n.contains("efidisk0")));
        assert!(g.notes.iter().any(|n| n.contains("not here: OVMF")));
        let g = generate(
            &gpu(Firmware::Ovmf, Some("/usr/share/kvm/gpu.rom")),
            None,
            0,
            None,
        );
        assert!(!g.command.unwrap().starts_with("cp"));
        assert!(!g.text.contains("x-vga"), "not primary");
    }

    #[test]
    fn hidden_kvm_and_rombar_and_a_single_function() {
        let mut p = gpu(Firmware::Ovmf, None);
        p.functions.truncate(1);
        p.settings.hide_kvm = true;
        p.settings.rombar = Some(false);
        let g = generate(&p, Some(7), 0, None);
        assert_eq!(
            g.text,
            "bios: ovmf\nmachine: q35\ncpu: host,hidden=1,hv-vendor-id=proxmox\nhostpci0: 0000:01:00.0,pcie=1,rombar=0\n"
        );
        p.settings.vendor_id = Some("whatever".into());
        p.settings.primary = true;
        p.functions[0].class_code = 0x030200;
        let g = generate(&p, Some(7), 0, None);
        assert!(g
            .text
            .contains("cpu: host,hidden=1,hv-vendor-id=whatever\nvga: none\n"));
    }
}
