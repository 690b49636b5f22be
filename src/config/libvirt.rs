//! libvirt: the `<os>` element that picks the firmware and one managed `<hostdev>` per function,
//! to paste into `virsh edit`. `managed='yes'` lets libvirt detach the device from its host
//! driver at VM start and give it back at shutdown.

use super::{Firmware, Generated, Passthrough};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// The `<os>` element.
pub fn os_element(p: &Passthrough) -> String {
    let firmware = match p.firmware {
        Firmware::Ovmf => " firmware='efi'",
        Firmware::Seabios => "",
    };
    format!("<os{firmware}>\n  <type arch='x86_64' machine='q35'>hvm</type>\n</os>\n")
}

/// The `<hostdev>` blocks, function 0 first; a romfile goes on function 0.
pub fn hostdevs(p: &Passthrough) -> String {
    let mut out = String::new();
    for (i, f) in p.functions.iter().enumerate() {
        let a = f.address;
        out.push_str("<hostdev mode='subsystem' type='pci' managed='yes'>\n  <source>\n");
        out.push_str(&format!(
            "    <address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>\n",
            a.domain, a.bus, a.device, a.function
        ));
        out.push_str("  </source>\n");
        if let (0, Some(rom)) = (i, &p.romfile) {
            out.push_str(&format!(
                "  <rom file='{}'/>\n",
                xml_escape(&rom.to_string_lossy())
            ));
        }
        out.push_str("</hostdev>\n");
    }
    out
}

pub fn generate(p: &Passthrough) -> Generated {
    let mut g = Generated::new("libvirt", p);
    g.text = format!("{}{}", os_element(p), hostdevs(p));
    g.notes.push("paste into the domain with `virsh edit VM`: <os> replaces the existing one, <hostdev> goes inside <devices>".into());
    if p.firmware == Firmware::Seabios && p.functions.first().is_some_and(|f| f.is_vga()) {
        g.notes.push(
            "libvirt has no x-vga switch: if SeaBIOS shows nothing, pass x-vga=on through <qemu:commandline> or use OVMF with a GOP-capable ROM"
                .into(),
        );
    }
    if p.romfile.is_some() {
        g.notes.push("the rom file must be readable by the qemu user (AppArmor/SELinux: keep it under /usr/share/vgabios or /var/lib/libvirt)".into());
    }
    g
}

/// A minimal whole domain around the generated parts: what tests feed to virt-xml-validate.
pub fn wrap_in_domain(p: &Passthrough, name: &str) -> String {
    let indent = |text: &str, n: usize| {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    format!(
        "<domain type='kvm'>\n  <name>{}</name>\n  <memory unit='MiB'>1024</memory>\n{}  <devices>\n{}  </devices>\n</domain>\n",
        xml_escape(name),
        indent(&os_element(p), 2),
        indent(&hostdevs(p), 4)
    )
}

#[cfg(test)]
mod tests {
    use super::super::testdata::gpu;
    use super::*;

    #[test]
    fn one_managed_hostdev_per_function_and_efi_for_ovmf() {
        let g = generate(&gpu(Firmware::Ovmf, Some("/var/lib/libvirt/vbios/a&b.rom")));
        assert!(g
            .text
            .starts_with("<os firmware='efi'>\n  <type arch='x86_64' machine='q35'>hvm</type>\n</os>\n"));
        assert_eq!(
            g.text
                .matches("<hostdev mode='subsystem' type='pci' managed='yes'>")
                .count(),
            2
        );
        assert!(g
            .text
            .contains("<address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>"));
        assert_eq!(
            g.text
                .matches("<rom file='/var/lib/libvirt/vbios/a&amp;b.rom'/>")
                .count(),
            1
        );
        let g = generate(&gpu(Firmware::Seabios, None));
        assert!(g.text.starts_with("<os>\n"));
        assert!(g.notes.iter().any(|n| n.contains("x-vga")));
    }
}
