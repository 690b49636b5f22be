//! Generated VM configuration checked by the real consumers that run here: libvirt's
//! virt-xml-validate (the domain RNG schema) and the host's qemu-system-x86_64 (which parses every
//! -device property before it looks for the host device). The Proxmox line is checked against
//! Proxmox's documented hostpci syntax.

use std::path::PathBuf;
use std::process::Command;

use vfiotool::config::{libvirt, proxmox, qemu, Firmware, Function, Passthrough};
use vfiotool::pci::address::PciAddress;

fn gpu(firmware: Firmware, romfile: Option<&str>, functions: u8) -> Passthrough {
    Passthrough {
        functions: (0..functions)
            .map(|f| Function {
                address: PciAddress {
                    domain: 0,
                    bus: 0x0a,
                    device: 0,
                    function: f,
                },
                class_code: if f == 0 { 0x030000 } else { 0x040300 },
            })
            .collect(),
        firmware,
        firmware_reason: "test".into(),
        romfile: romfile.map(PathBuf::from),
    }
}

fn variants() -> Vec<Passthrough> {
    vec![
        gpu(Firmware::Ovmf, None, 2),
        gpu(Firmware::Seabios, None, 2),
        gpu(Firmware::Ovmf, Some("/var/lib/libvirt/vbios/gpu.rom"), 4),
        gpu(Firmware::Seabios, Some("/usr/share/kvm/patched.rom"), 1),
    ]
}

fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: install Debian's {package} (bash tests/install-deps.sh)"
    );
}

#[test]
fn libvirt_domains_validate_against_libvirts_schema() {
    need("virt-xml-validate", "libvirt-clients");
    need("xmllint", "libxml2-utils");
    let dir = tempfile::tempdir().unwrap();
    for (i, p) in variants().iter().enumerate() {
        let path = dir.path().join(format!("domain{i}.xml"));
        std::fs::write(&path, libvirt::wrap_in_domain(p, &format!("vm{i}"))).unwrap();
        let o = Command::new("virt-xml-validate")
            .arg(&path)
            .arg("domain")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "variant {i}: {}{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(&path).unwrap()
        );
    }
    // The validator does reject a broken hostdev, so a pass above means something.
    let bad = dir.path().join("bad.xml");
    let text = libvirt::wrap_in_domain(&variants()[0], "bad").replace("managed='yes'", "managed='perhaps'");
    std::fs::write(&bad, text).unwrap();
    let o = Command::new("virt-xml-validate")
        .arg(&bad)
        .arg("domain")
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "virt-xml-validate accepted managed='perhaps'"
    );
}

/// Run QEMU with the generated arguments; it must get as far as opening the host device.
fn qemu_accepts(args: &[String]) -> Result<(), String> {
    let o = Command::new("timeout")
        .args([
            "30",
            "qemu-system-x86_64",
            "-nodefaults",
            "-display",
            "none",
            "-S",
        ])
        .args(args.iter().map(|a| {
            if a == "q35,accel=kvm" {
                "q35,accel=tcg"
            } else {
                a.as_str()
            }
        }))
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("no such host device") {
        Ok(())
    } else {
        Err(format!("exit {:?}: {err}", o.status.code()))
    }
}

#[test]
fn qemu_parses_the_generated_device_arguments() {
    need("qemu-system-x86_64", "qemu-system-x86");
    for (i, p) in variants().iter().enumerate() {
        let g = qemu::generate(p, qemu::find_ovmf(std::path::Path::new("/")));
        // QEMU reads a romfile at realize, after the host device is found; the pflash files
        // must exist, so point them at the real OVMF and a scratch copy of its vars.
        let dir = tempfile::tempdir().unwrap();
        let vars = dir.path().join("OVMF_VARS.fd");
        if p.firmware == Firmware::Ovmf {
            let code = qemu::find_ovmf(std::path::Path::new("/")).expect("OVMF installed (Debian ovmf)");
            std::fs::copy(qemu::vars_template(code), &vars).unwrap();
        }
        let args: Vec<String> = g
            .args
            .iter()
            .map(|a| a.replace("file=OVMF_VARS.fd", &format!("file={}", vars.display())))
            .collect();
        qemu_accepts(&args).unwrap_or_else(|e| panic!("variant {i}: {e}\nargs: {args:?}"));
    }
    // A misspelt property is refused before the device is looked up, so the check has teeth.
    let bad = vec![
        "-device".to_string(),
        "vfio-pci,host=0000:0a:00.0,multifunktion=on".to_string(),
    ];
    assert!(qemu_accepts(&bad)
        .unwrap_err()
        .contains("Property 'vfio-pci.multifunktion' not found"));
}

/// Proxmox's documented syntax: `hostpciN: [host=]<HOSTPCIID[;HOSTPCIID2...]>[,options]` with
/// HOSTPCIID `[domain:]bus:dev[.func]`, `pcie=<1|0>`, `x-vga=<1|0>`, `romfile=<string>` (a
/// name under /usr/share/kvm), and the `qm set` option `--hostpciN` with the same value.
fn proxmox_line_is_valid(line: &str) -> Result<(), String> {
    let (key, value) = line.split_once(": ").ok_or("no `key: value`")?;
    let n = key.strip_prefix("hostpci").ok_or("key is not hostpciN")?;
    if n.parse::<u8>().map_err(|e| e.to_string())? > 15 {
        return Err("hostpci index above 15".into());
    }
    let mut parts = value.split(',');
    let host = parts.next().ok_or("no host id")?;
    let host = host.strip_prefix("host=").unwrap_or(host);
    for id in host.split(';') {
        let (slot, func) = match id.split_once('.') {
            Some((s, f)) => (s, Some(f)),
            None => (id, None),
        };
        let fields: Vec<&str> = slot.split(':').collect();
        let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
        let ok = match fields.as_slice() {
            [d, b, s] => hex(d, 4) && hex(b, 2) && hex(s, 2),
            [b, s] => hex(b, 2) && hex(s, 2),
            _ => false,
        };
        if !ok || func.is_some_and(|f| !(f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c)))) {
            return Err(format!("bad HOSTPCIID {id:?}"));
        }
    }
    for opt in parts {
        let (k, v) = opt
            .split_once('=')
            .ok_or(format!("option {opt:?} is not key=value"))?;
        match k {
            "pcie" | "x-vga" | "rombar" => {
                if v != "0" && v != "1" {
                    return Err(format!("{k}={v} is not 0 or 1"));
                }
            }
            "romfile" => {
                if v.contains('/') {
                    return Err("romfile is a name under /usr/share/kvm, not a path".into());
                }
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(())
}

#[test]
fn proxmox_lines_follow_the_documented_syntax() {
    for (i, p) in variants().iter().enumerate() {
        let g = proxmox::generate(p, Some(100), i as u8);
        proxmox_line_is_valid(&g.text).unwrap_or_else(|e| panic!("{}: {e}", g.text));
        let cmd = g.command.unwrap();
        let value = g.text.split_once(": ").unwrap().1;
        assert!(cmd.ends_with(&format!("--hostpci{i} {value}")), "{cmd}");
        assert!(cmd.starts_with("qm set 100 --machine q35 --bios "));
    }
    assert!(proxmox_line_is_valid("hostpci0: 01:00,pcie=yes").is_err());
    assert!(proxmox_line_is_valid("hostpci0: 0000:01:00,romfile=/root/x.rom").is_err());
}
