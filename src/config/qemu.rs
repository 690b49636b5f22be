//! Plain QEMU: `-machine q35`, the OVMF pflash drives when OVMF is the choice, and one
//! `-device vfio-pci` per function behind a PCIe root port, keeping the functions together in one
//! guest slot (function 0 carries `multifunction=on`). `--primary` drops the emulated VGA
//! (`-vga none`) and, under SeaBIOS, routes legacy VGA to the card (`x-vga=on`); hidden KVM is
//! `-cpu host,kvm=off` with a Hyper-V vendor id (QEMU applies `hv_vendor_id` only when some
//! Hyper-V enlightenment is on, hence `hv_relaxed`).

use std::path::Path;

use super::{Firmware, Generated, Passthrough};

/// OVMF code images as distributions install them, most common first.
pub const OVMF_CODE_PATHS: &[&str] = &[
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
    "/usr/share/edk2/ovmf/OVMF_CODE.fd",
    "/usr/share/qemu/ovmf-x86_64-code.bin",
];

/// The first OVMF code image present below `root` (`/` on a live host).
pub fn find_ovmf(root: &Path) -> Option<&'static str> {
    OVMF_CODE_PATHS
        .iter()
        .copied()
        .find(|p| crate::host::under(root, p).is_file())
}

/// The VARS template that goes with a CODE image (same directory, CODE -> VARS).
pub fn vars_template(code: &str) -> String {
    code.replacen("CODE", "VARS", 1).replacen("code", "vars", 1)
}

const ROOT_PORT: &str = "vfio-rp0";
const IOMMUFD_ID: &str = "iommufd0";

pub fn generate(p: &Passthrough, ovmf_code: Option<&str>) -> Generated {
    let mut g = Generated::new("qemu", p);
    let mut args: Vec<String> = vec!["-machine".into(), "q35,accel=kvm".into()];
    if let Some(id) = p.vendor_id() {
        args.push("-cpu".into());
        args.push(format!("host,kvm=off,hv_relaxed,hv_vendor_id={id}"));
    }
    if p.firmware == Firmware::Ovmf {
        let code = ovmf_code.unwrap_or(OVMF_CODE_PATHS[0]);
        if ovmf_code.is_none() {
            g.notes.push(format!(
                "no OVMF found on this host: install it (Debian: apt install ovmf) or change {code}"
            ));
        }
        args.push("-drive".into());
        args.push(format!("if=pflash,format=raw,readonly=on,file={code}"));
        args.push("-drive".into());
        args.push("if=pflash,format=raw,file=OVMF_VARS.fd".into());
        g.notes.push(format!(
            "copy {} to OVMF_VARS.fd next to the VM: it is the VM's writable EFI variable store",
            vars_template(code)
        ));
    }
    if p.settings.iommufd {
        // One iommufd object for every device: QEMU opens /dev/iommu once and each vfio-pci
        // its device cdev (found from host= through sysfs vfio-dev/).
        args.push("-object".into());
        args.push(format!("iommufd,id={IOMMUFD_ID}"));
    }
    args.push("-device".into());
    args.push(format!("pcie-root-port,id={ROOT_PORT},chassis=1,slot=1"));
    for (i, f) in p.functions.iter().enumerate() {
        let mut dev = format!(
            "vfio-pci,host={},bus={ROOT_PORT},addr=00.{:x}",
            f.address, f.address.function
        );
        if p.settings.iommufd {
            dev.push_str(&format!(",iommufd={IOMMUFD_ID}"));
        }
        if i == 0 {
            if p.multifunction() {
                dev.push_str(",multifunction=on");
            }
            if g.x_vga {
                dev.push_str(",x-vga=on");
            }
            if let Some(bar) = p.settings.rombar {
                dev.push_str(&format!(",rombar={}", u8::from(bar)));
            }
            if let Some(rom) = &p.romfile {
                // QEMU's option parser reads `,,` as a literal comma inside a value.
                dev.push_str(&format!(
                    ",romfile={}",
                    rom.display().to_string().replace(',', ",,")
                ));
            }
        }
        args.push("-device".into());
        args.push(dev);
    }
    if p.settings.primary {
        args.push("-vga".into());
        args.push("none".into());
    }
    g.text = args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    g.args = args;
    g
}

/// Quote an argument for a POSIX shell only when it needs it.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=,./:+@%".contains(&b))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{gpu, primary};
    use super::*;

    #[test]
    fn functions_share_one_guest_slot_behind_a_root_port() {
        let g = generate(&primary(gpu(Firmware::Seabios, Some("/vms/my gpu.rom"))), None);
        let devices: Vec<&String> = g.args.iter().filter(|a| a.starts_with("vfio-pci")).collect();
        assert_eq!(
            devices,
            [
                "vfio-pci,host=0000:01:00.0,bus=vfio-rp0,addr=00.0,multifunction=on,x-vga=on,romfile=/vms/my gpu.rom",
                "vfio-pci,host=0000:01:00.1,bus=vfio-rp0,addr=00.1",
            ]
        );
        assert!(g.args.ends_with(&["-vga".to_string(), "none".to_string()]));
        assert!(g.text.contains("'vfio-pci,host=0000:01:00.0,bus=vfio-rp0,addr=00.0,multifunction=on,x-vga=on,romfile=/vms/my gpu.rom'"));
    }

    #[test]
    fn ovmf_adds_pflash_and_no_x_vga() {
        let g = generate(
            &gpu(Firmware::Ovmf, None),
            Some("/usr/share/OVMF/OVMF_CODE_4M.fd"),
        );
        assert!(g
            .args
            .contains(&"if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd".to_string()));
        assert!(g
            .notes
            .iter()
            .any(|n| n.contains("/usr/share/OVMF/OVMF_VARS_4M.fd")));
        assert!(!g.text.contains("x-vga") && !g.text.contains("-vga none"));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        let mut p = primary(gpu(Firmware::Ovmf, None));
        p.settings.hide_kvm = true;
        p.settings.rombar = Some(false);
        let g = generate(&p, None);
        assert!(!g.text.contains("x-vga"), "OVMF needs no legacy VGA");
        assert!(g.args.ends_with(&["-vga".to_string(), "none".to_string()]));
        assert!(g
            .text
            .contains("-cpu host,kvm=off,hv_relaxed,hv_vendor_id=proxmox "));
        assert!(g.text.contains("multifunction=on,rombar=0"));
    }

    #[test]
    fn iommufd_adds_one_object_and_names_it_on_every_function() {
        let mut p = gpu(Firmware::Ovmf, None);
        p.settings.iommufd = true;
        let g = generate(&p, None);
        let at = g.args.iter().position(|a| a == "iommufd,id=iommufd0").unwrap();
        assert_eq!(g.args[at - 1], "-object");
        let devices: Vec<&String> = g.args.iter().filter(|a| a.starts_with("vfio-pci")).collect();
        assert_eq!(devices.len(), 2);
        assert!(
            devices.iter().all(|d| d.contains(",iommufd=iommufd0")),
            "{devices:?}"
        );
        assert!(at < g.args.iter().position(|a| a.starts_with("vfio-pci")).unwrap());
    }
}
