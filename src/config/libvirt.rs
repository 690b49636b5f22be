//! libvirt: the elements to paste into `virsh edit` (the default), or with `--domain NAME` a
//! whole domain that `virsh define` takes. `<os>` picks the firmware, `<features>` carries the
//! Code 43 workarounds (`<kvm><hidden state='on'/></kvm>`, `<hyperv><vendor_id/></hyperv>`),
//! `<video><model type='none'/></video>` makes the passed GPU the only display, and there is
//! one managed `<hostdev>` per function (`managed='yes'` lets libvirt detach the device from
//! its host driver at VM start and give it back at shutdown; `<rom bar= file=>` on function 0).

use super::{Firmware, Generated, Passthrough};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// What `--domain` needs besides the passthrough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: String,
    pub memory_mib: u32,
    pub vcpus: u32,
}

/// The `<os>` element.
pub fn os_element(p: &Passthrough) -> String {
    let firmware = match p.firmware {
        Firmware::Ovmf => " firmware='efi'",
        Firmware::Seabios => "",
    };
    format!("<os{firmware}>\n  <type arch='x86_64' machine='q35'>hvm</type>\n</os>\n")
}

/// The `<features>` element: acpi and apic (a q35 guest needs both), and with hidden KVM the
/// Hyper-V vendor id and KVM's hidden state.
pub fn features_element(p: &Passthrough) -> String {
    let mut out = String::from("<features>\n  <acpi/>\n  <apic/>\n");
    if let Some(id) = p.vendor_id() {
        out.push_str(&format!(
            "  <hyperv>\n    <vendor_id state='on' value='{}'/>\n  </hyperv>\n  <kvm>\n    <hidden state='on'/>\n  </kvm>\n",
            xml_escape(id)
        ));
    }
    out.push_str("</features>\n");
    out
}

/// `<video><model type='none'/></video>`: no emulated display, the passed GPU is the VM's.
pub fn video_element(p: &Passthrough) -> Option<String> {
    p.settings
        .primary
        .then(|| "<video>\n  <model type='none'/>\n</video>\n".to_string())
}

/// The user alias function 0 gets in a whole domain, so `<qemu:override>` can name it.
pub const GPU_ALIAS: &str = "ua-vfiotool-gpu";

/// libvirt has no x-vga switch: a whole domain sets QEMU's property through `<qemu:override>`
/// (libvirt 8.2+, QEMU driver), keyed by function 0's alias.
fn qemu_override() -> String {
    format!(
        "<qemu:override>\n  <qemu:device alias='{GPU_ALIAS}'>\n    <qemu:frontend>\n      <qemu:property name='x-vga' type='bool' value='true'/>\n    </qemu:frontend>\n  </qemu:device>\n</qemu:override>\n"
    )
}

/// The `<hostdev>` blocks, function 0 first; the ROM settings go on function 0.
pub fn hostdevs(p: &Passthrough) -> String {
    hostdevs_with_alias(p, None)
}

fn hostdevs_with_alias(p: &Passthrough, alias: Option<&str>) -> String {
    let mut out = String::new();
    for (i, f) in p.functions.iter().enumerate() {
        let a = f.address;
        out.push_str("<hostdev mode='subsystem' type='pci' managed='yes'>\n  <source>\n");
        out.push_str(&format!(
            "    <address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>\n",
            a.domain, a.bus, a.device, a.function
        ));
        out.push_str("  </source>\n");
        if p.settings.iommufd {
            out.push_str("  <driver iommufd='yes'/>\n");
        }
        if i == 0 {
            let bar = p
                .settings
                .rombar
                .map(|b| format!(" bar='{}'", if b { "on" } else { "off" }))
                .unwrap_or_default();
            let file = p
                .romfile
                .as_ref()
                .map(|r| format!(" file='{}'", xml_escape(&r.to_string_lossy())))
                .unwrap_or_default();
            if !bar.is_empty() || !file.is_empty() {
                out.push_str(&format!("  <rom{bar}{file}/>\n"));
            }
            if let Some(a) = alias {
                out.push_str(&format!("  <alias name='{a}'/>\n"));
            }
        }
        out.push_str("</hostdev>\n");
    }
    out
}

fn indent(text: &str, n: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(n))).collect()
}

/// A whole domain: memory, vcpus, q35, firmware, features, the host CPU, and the devices.
pub fn domain(p: &Passthrough, spec: &DomainSpec) -> String {
    let mut devices = String::new();
    if let Some(v) = video_element(p) {
        devices.push_str(&v);
    }
    let x_vga = p.x_vga();
    devices.push_str(&hostdevs_with_alias(p, x_vga.then_some(GPU_ALIAS)));
    let (ns, tail) = if x_vga {
        (
            " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'",
            indent(&qemu_override(), 2),
        )
    } else {
        ("", String::new())
    };
    format!(
        "<domain type='kvm'{ns}>\n  <name>{}</name>\n  <memory unit='MiB'>{}</memory>\n  <vcpu placement='static'>{}</vcpu>\n{}{}  <cpu mode='host-passthrough' check='none'/>\n  <devices>\n{}  </devices>\n{tail}</domain>\n",
        xml_escape(&spec.name),
        spec.memory_mib,
        spec.vcpus,
        indent(&os_element(p), 2),
        indent(&features_element(p), 2),
        indent(&devices, 4)
    )
}

pub fn generate(p: &Passthrough, spec: Option<&DomainSpec>) -> Generated {
    let mut g = Generated::new("libvirt", p);
    match spec {
        Some(spec) => {
            g.text = domain(p, spec);
            g.notes.push(format!(
                "save it as {0}.xml, then `virsh define {0}.xml`; add a disk and a network before the first start",
                spec.name
            ));
        }
        None => {
            let mut text = os_element(p);
            if p.settings.hide_kvm {
                text.push_str(&features_element(p));
            }
            if let Some(v) = video_element(p) {
                text.push_str(&v);
            }
            text.push_str(&hostdevs(p));
            g.text = text;
            g.notes.push(format!(
                "paste into the domain with `virsh edit VM`: <os>{} replace{} the existing one{}, {}<hostdev> go{} inside <devices> (or print a whole domain with --domain NAME)",
                if p.settings.hide_kvm { " and <features>" } else { "" },
                if p.settings.hide_kvm { "" } else { "s" },
                if p.settings.hide_kvm { "s" } else { "" },
                if p.settings.primary { "<video> (replacing the existing one) and " } else { "" },
                if p.settings.primary { "" } else { "es" },
            ));
        }
    }
    if p.x_vga() {
        g.notes.push(if spec.is_some() {
            format!("SeaBIOS draws through legacy VGA: libvirt has no x-vga switch, so <qemu:override> sets QEMU's x-vga=on on {GPU_ALIAS} (libvirt 8.2 or later)")
        } else {
            "SeaBIOS draws through legacy VGA and libvirt has no x-vga switch: set it with <qemu:override> (libvirt 8.2+; --domain NAME prints it) or use OVMF with a GOP-capable ROM".to_string()
        });
    }
    if p.romfile.is_some() {
        g.notes.push("the rom file must be readable by the qemu user (AppArmor/SELinux: keep it under /usr/share/vgabios or /var/lib/libvirt)".into());
    }
    g
}

/// A minimal whole domain around the generated parts (kept for callers of the old API).
pub fn wrap_in_domain(p: &Passthrough, name: &str) -> String {
    domain(
        p,
        &DomainSpec {
            name: name.to_string(),
            memory_mib: 1024,
            vcpus: 1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{gpu, primary};
    use super::*;

    #[test]
    fn one_managed_hostdev_per_function_and_efi_for_ovmf() {
        let g = generate(&gpu(Firmware::Ovmf, Some("/var/lib/libvirt/vbios/a&b.rom")), None);
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
        assert!(!g.text.contains("<video>") && !g.text.contains("<features>"));
        let g = generate(&primary(gpu(Firmware::Seabios, None)), None);
        assert!(g.text.starts_with("<os>\n"));
        assert!(g.text.contains("<video>\n  <model type='none'/>\n</video>\n"));
        assert!(g.notes.iter().any(|n| n.contains("x-vga")));
    }

    #[test]
    fn hidden_kvm_rombar_and_a_whole_domain() {
        let mut p = primary(gpu(Firmware::Ovmf, None));
        p.settings.hide_kvm = true;
        p.settings.vendor_id = Some("abc123".into());
        p.settings.rombar = Some(false);
        let spec = DomainSpec {
            name: "win<1>".into(),
            memory_mib: 8192,
            vcpus: 4,
        };
        let d = generate(&p, Some(&spec)).text;
        for part in [
            "<name>win&lt;1&gt;</name>",
            "<memory unit='MiB'>8192</memory>",
            "<vcpu placement='static'>4</vcpu>",
            "<vendor_id state='on' value='abc123'/>",
            "<hidden state='on'/>",
            "      <model type='none'/>",
            "<rom bar='off'/>",
        ] {
            assert!(d.contains(part), "{part}: {d}");
        }
        assert!(!d.contains("qemu:"), "OVMF needs no x-vga");
        p.firmware = Firmware::Seabios;
        let d = generate(&p, Some(&spec)).text;
        assert!(d.starts_with("<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"));
        assert!(d.contains("<alias name='ua-vfiotool-gpu'/>"));
        assert!(d.contains("<qemu:property name='x-vga' type='bool' value='true'/>"));
    }

    #[test]
    fn iommufd_puts_a_driver_element_in_every_hostdev() {
        let mut p = gpu(Firmware::Ovmf, None);
        assert!(!hostdevs(&p).contains("iommufd"));
        p.settings.iommufd = true;
        let h = hostdevs(&p);
        assert_eq!(
            h.matches("  </source>\n  <driver iommufd='yes'/>\n").count(),
            2,
            "{h}"
        );
    }
}
