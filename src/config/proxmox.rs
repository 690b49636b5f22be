//! Proxmox VE: the `hostpciN:` line of /etc/pve/qemu-server/VMID.conf and the `qm set` command
//! that writes it. Syntax: `hostpciN: [host=]DDDD:BB:DD[.F],pcie=1,x-vga=1,romfile=FILE`, where
//! leaving out `.F` passes every function and `romfile` is relative to /usr/share/kvm/.

use std::path::Path;

use super::{Firmware, Generated, Passthrough};

/// Where Proxmox looks for `romfile=` names.
pub const ROM_DIR: &str = "/usr/share/kvm";

pub fn generate(p: &Passthrough, vmid: Option<u32>, index: u8) -> Generated {
    let mut g = Generated::new("proxmox", p);
    let Some(first) = p.functions.first() else {
        return g;
    };
    let a = first.address;
    let host = if p.multifunction() {
        format!("{:04x}:{:02x}:{:02x}", a.domain, a.bus, a.device)
    } else {
        a.to_string()
    };
    let mut options = vec![host, "pcie=1".to_string()];
    if g.x_vga {
        options.push("x-vga=1".into());
    }
    if let Some(rom) = &p.romfile {
        let name = rom
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let under_rom_dir = rom.parent() == Some(Path::new(ROM_DIR));
        if !under_rom_dir {
            g.notes.push(format!(
                "copy {} to {ROM_DIR}/{name}: Proxmox reads romfile= relative to {ROM_DIR}/",
                rom.display()
            ));
        }
        options.push(format!("romfile={name}"));
    }
    let value = options.join(",");
    g.text = format!("hostpci{index}: {value}");
    let vm = vmid.map(|v| v.to_string()).unwrap_or_else(|| "VMID".into());
    g.command = Some(format!(
        "qm set {vm} --machine q35 --bios {} --hostpci{index} {value}",
        p.firmware.name()
    ));
    if vmid.is_none() {
        g.notes.push("replace VMID with the VM's id (qm list)".into());
    }
    if p.firmware == Firmware::Ovmf {
        g.notes.push(format!(
            "OVMF keeps its settings on an EFI disk: qm set {vm} --efidisk0 STORAGE:1,efitype=4m"
        ));
    }
    g
}

#[cfg(test)]
mod tests {
    use super::super::testdata::gpu;
    use super::*;

    #[test]
    fn seabios_gpu_gets_x_vga_and_all_functions() {
        let g = generate(&gpu(Firmware::Seabios, None), Some(100), 0);
        assert_eq!(g.text, "hostpci0: 0000:01:00,pcie=1,x-vga=1");
        assert_eq!(
            g.command.as_deref(),
            Some("qm set 100 --machine q35 --bios seabios --hostpci0 0000:01:00,pcie=1,x-vga=1")
        );
    }

    #[test]
    fn ovmf_drops_x_vga_and_romfile_is_named_relative_to_usr_share_kvm() {
        let g = generate(&gpu(Firmware::Ovmf, Some("/root/patched.rom")), None, 1);
        assert_eq!(g.text, "hostpci1: 0000:01:00,pcie=1,romfile=patched.rom");
        assert!(g
            .notes
            .iter()
            .any(|n| n.contains("copy /root/patched.rom to /usr/share/kvm/patched.rom")));
        assert!(g.notes.iter().any(|n| n.contains("efidisk0")));
        assert!(g
            .command
            .as_deref()
            .unwrap()
            .starts_with("qm set VMID --machine q35 --bios ovmf"));
        let g = generate(&gpu(Firmware::Ovmf, Some("/usr/share/kvm/gpu.rom")), None, 0);
        assert!(!g.notes.iter().any(|n| n.starts_with("copy")));
    }

    #[test]
    fn a_single_function_is_named_with_its_function() {
        let mut p = gpu(Firmware::Ovmf, None);
        p.functions.truncate(1);
        assert_eq!(generate(&p, Some(7), 0).text, "hostpci0: 0000:01:00.0,pcie=1");
    }
}
