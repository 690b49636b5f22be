//! Generated VM configuration checked by the real consumers that run here: libvirt's
//! virt-xml-validate (the domain RNG schema) and the host's qemu-system-x86_64 (which parses every
//! -device property before it looks for the host device), libvirt's own parser through its test
//! driver (`virsh -c test:///default define`), and for Proxmox a model of qemu-server's and
//! pve-guest-common's formats (tests/common/pve.rs). Every variant of the settings goes through
//! every consumer.

use std::path::{Path, PathBuf};
use std::process::Command;

use vfiotool::config::libvirt::DomainSpec;
use vfiotool::config::mapping::{self, MapEntry};
use vfiotool::config::{libvirt, proxmox, qemu, Firmware, Function, Passthrough, Settings};
use vfiotool::pci::address::PciAddress;

#[path = "common/pve.rs"]
mod pve;

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
        settings: Settings::default(),
        choices: Vec::new(),
    }
}

/// Every combination of the settings over four base cases (firmware, romfile, functions).
fn variants() -> Vec<Passthrough> {
    let bases = [
        gpu(Firmware::Ovmf, None, 2),
        gpu(Firmware::Seabios, None, 2),
        gpu(Firmware::Ovmf, Some("/var/lib/libvirt/vbios/gpu.rom"), 4),
        gpu(Firmware::Seabios, Some("/usr/share/kvm/patched.rom"), 1),
    ];
    let mut out = Vec::new();
    for base in bases {
        for primary in [false, true] {
            for (hide_kvm, vendor_id) in [(false, None), (true, None), (true, Some("ABCdef123456"))] {
                for rombar in [None, Some(false), Some(true)] {
                    let mut p = base.clone();
                    p.settings = Settings {
                        primary,
                        hide_kvm,
                        vendor_id: vendor_id.map(String::from),
                        rombar,
                        iommufd: false,
                    };
                    out.push(p);
                }
            }
        }
    }
    out
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

fn run_tool(cmd: &str, args: &[&str], file: &Path) -> Result<(), String> {
    let o = Command::new(cmd)
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// libvirt's own parser, no daemon: the test driver defines the domain in a fresh in-memory
/// connection; `--validate` checks it against the RelaxNG schema first.
fn virsh_define(file: &Path, validate: bool) -> Result<(), String> {
    let mut args = vec!["-c", "test:///default", "define"];
    if validate {
        args.push("--validate");
    }
    run_tool("virsh", &args, file)
}

fn domain_spec(i: usize) -> DomainSpec {
    DomainSpec {
        name: format!("vm{i}"),
        memory_mib: 4096,
        vcpus: 2,
    }
}

#[test]
fn libvirt_domains_are_accepted_by_libvirt() {
    need("virt-xml-validate", "libvirt-clients");
    need("virsh", "libvirt-clients");
    need("xmllint", "libxml2-utils");
    let dir = tempfile::tempdir().unwrap();
    for (i, p) in variants().iter().enumerate() {
        let g = libvirt::generate(p, Some(&domain_spec(i)));
        let path = dir.path().join(format!("domain{i}.xml"));
        std::fs::write(&path, &g.text).unwrap();
        let ctx = |e: String| format!("variant {i} ({:?}): {e}\n{}", p.settings, g.text);
        run_tool("virt-xml-validate", &[], &path)
            .and_then(|()| virsh_define(&path, false))
            .and_then(|()| virsh_define(&path, true))
            .unwrap_or_else(|e| panic!("{}", ctx(e)));
        // The fragment's parts, put into a domain where `virsh edit` would put them, too.
        let frag = libvirt::generate(p, None).text;
        let os_end = frag.find("</os>\n").unwrap() + 6;
        let (head, rest) = frag.split_at(os_end);
        let (features, devices) = match rest.find("</features>\n") {
            Some(e) => rest.split_at(e + 12),
            None => ("", rest),
        };
        let doc = format!(
            "<domain type='kvm'><name>f{i}</name><memory unit='MiB'>1024</memory>{head}{features}<devices>{devices}</devices></domain>"
        );
        let fpath = dir.path().join(format!("fragment{i}.xml"));
        std::fs::write(&fpath, &doc).unwrap();
        virsh_define(&fpath, true).unwrap_or_else(|e| panic!("fragment {i}: {e}\n{doc}"));
    }
    // Both checks reject a broken domain, so a pass above means something.
    let bad = dir.path().join("bad.xml");
    let mut p = variants()[0].clone();
    p.settings.hide_kvm = true;
    // (libvirt's parser reads any managed= other than 'yes' as no: only the schema refuses it.)
    for (from, to, parser_refuses) in [
        ("managed='yes'", "managed='perhaps'", false),
        ("<hidden state='on'/>", "<hidden state='maybe'/>", true),
        ("function='0x0'", "function='0x9'", true),
    ] {
        let text = libvirt::wrap_in_domain(&p, "bad").replacen(from, to, 1);
        std::fs::write(&bad, text).unwrap();
        assert!(
            run_tool("virt-xml-validate", &[], &bad).is_err(),
            "schema took {to}"
        );
        assert!(
            virsh_define(&bad, true).is_err(),
            "virsh define --validate took {to}"
        );
        if parser_refuses {
            assert!(virsh_define(&bad, false).is_err(), "virsh define took {to}");
        }
    }
    // The x-vga override (SeaBIOS, primary) is checked by the schema: the test driver keeps no
    // QEMU namespace, the QEMU driver reads it.
    let mut p = variants()[0].clone();
    p.firmware = Firmware::Seabios;
    p.settings.primary = true;
    let text = libvirt::wrap_in_domain(&p, "xvga");
    assert!(text.contains("<qemu:override>"), "{text}");
    let bad_text = text.replace("type='bool'", "type='bolean'");
    std::fs::write(&bad, bad_text).unwrap();
    assert!(
        run_tool("virt-xml-validate", &[], &bad).is_err(),
        "schema took type='bolean'"
    );
    assert!(virsh_define(&bad, true).is_err());
}

/// Run QEMU with the generated arguments; it must get as far as opening the host device.
/// Under TCG (no /dev/kvm here) `-cpu host` becomes `-cpu max` with the same flags.
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
                "q35,accel=tcg".to_string()
            } else if let Some(flags) = a.strip_prefix("host,") {
                format!("max,{flags}")
            } else {
                a.clone()
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
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in variants().iter().enumerate() {
        let g = qemu::generate(p, qemu::find_ovmf(Path::new("/")));
        if !seen.insert(g.args.clone()) {
            continue;
        }
        // QEMU reads a romfile at realize, after the host device is found; the pflash files
        // must exist, so point them at the real OVMF and a scratch copy of its vars.
        let dir = tempfile::tempdir().unwrap();
        let vars = dir.path().join("OVMF_VARS.fd");
        if p.firmware == Firmware::Ovmf {
            let code = qemu::find_ovmf(Path::new("/")).expect("OVMF installed (Debian ovmf)");
            std::fs::copy(qemu::vars_template(code), &vars).unwrap();
        }
        let args: Vec<String> = g
            .args
            .iter()
            .map(|a| a.replace("file=OVMF_VARS.fd", &format!("file={}", vars.display())))
            .collect();
        qemu_accepts(&args).unwrap_or_else(|e| panic!("variant {i}: {e}\nargs: {args:?}"));
    }
    // A comma in a romfile path is doubled, as QEMU's option parser wants.
    let g = qemu::generate(&gpu(Firmware::Seabios, Some("/vms/my,gpu.rom"), 1), None);
    assert!(g.text.contains("romfile=/vms/my,,gpu.rom"), "{}", g.text);
    qemu_accepts(&g.args).unwrap_or_else(|e| panic!("comma romfile: {e}"));
    // A misspelt property is refused before the device is looked up, so the check has teeth.
    let bad = vec![
        "-device".to_string(),
        "vfio-pci,host=0000:0a:00.0,multifunktion=on".to_string(),
    ];
    assert!(qemu_accepts(&bad)
        .unwrap_err()
        .contains("Property 'vfio-pci.multifunktion' not found"));
    let bad = vec!["-cpu".to_string(), "host,kvm=maybe".to_string()];
    assert!(qemu_accepts(&bad).is_err());
}

fn entry(node: &str, path: &str, group: u32) -> MapEntry {
    MapEntry {
        node: node.into(),
        path: path.into(),
        id: "10de:2204".into(),
        subsystem_id: Some("10de:1454".into()),
        iommugroup: Some(group),
    }
}

/// Every Proxmox variant, with a host id and through a mapping (new, and merged into a file
/// that holds another node), passes the model of qemu-server's and pve-guest-common's parsers.
#[test]
fn proxmox_output_passes_qemu_servers_formats() {
    let root = tempfile::tempdir().unwrap();
    let fresh = mapping::build(root.path(), "gpu", "pve1", &[entry("pve1", "0000:0a:00", 3)]).unwrap();
    let cfg = root.path().join("etc/pve/mapping");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("pci.cfg"),
        "gpu\n\tmap id=10de:2204,iommugroup=7,node=pve2,path=0000:01:00,subsystem-id=10de:1454\n",
    )
    .unwrap();
    let merged = mapping::build(
        root.path(),
        "gpu",
        "pve1",
        &[entry("pve1", "0000:0a:00", 3), entry("pve1", "0000:0b:00.0", 4)],
    )
    .unwrap();
    let sections = pve::mapping_cfg(&merged.section).unwrap();
    assert_eq!(sections["gpu"].len(), 3, "{}", merged.section);
    pve::mapping_cfg(&fresh.section).unwrap();
    for m in [&fresh, &merged] {
        for arg in m.command.split(" --map ").skip(1) {
            pve::parse_property_string(pve::MAP, arg).unwrap_or_else(|e| panic!("{e}: {arg}"));
        }
    }
    for (i, p) in variants().iter().enumerate() {
        for (index, mapping) in [(0u8, None), (5, Some(&fresh)), (15, Some(&merged))] {
            let g = proxmox::generate(p, Some(100), index, mapping);
            let conf = pve::vm_config(&g.text)
                .unwrap_or_else(|e| panic!("variant {i} ({:?}): {e}\n{}", p.settings, g.text));
            let key = format!("hostpci{index}");
            let value = &conf[&key];
            let hostpci = pve::hostpci(value).unwrap();
            assert_eq!(hostpci.contains_key("mapping"), mapping.is_some());
            assert_eq!(
                hostpci.get("x-vga").map(String::as_str),
                (p.settings.primary && p.first_is_vga()).then_some("1"),
                "{value}"
            );
            if let Some(vid) = p.vendor_id() {
                assert_eq!(conf["cpu"], format!("host,hidden=1,hv-vendor-id={vid}"));
            }
            // The qm set command carries the same values.
            let qm = g.command.unwrap();
            let qm = qm.lines().last().unwrap();
            assert!(qm.ends_with(&format!("--{key} {value}")), "{qm}");
            for (k, v) in &conf {
                assert!(qm.contains(&format!("--{k} {v}")), "{k}: {qm}");
            }
        }
    }
}

/// The model has teeth: what qemu-server and pve-guest-common refuse, it refuses.
#[test]
fn the_model_rejects_what_qemu_server_rejects() {
    assert!(pve::hostpci("0000:01:00,pcie=1,x-vga=1").is_ok());
    assert!(pve::hostpci("01:00.0;01:00.1,rombar=0").is_ok());
    assert!(pve::hostpci("mapping=gpu,pcie=1").is_ok());
    for bad in [
        "0000:0A:00,pcie=1",           // upper-case hex
        "0000:01:00,pcie=yes please",  // not a boolean
        "0000:01:00,romfile=a;b",      // romfile pattern
        "0000:01:00,multifunction=on", // unknown key
        "0000:01:00,pcie=1,pcie=0",    // duplicate
        "mapping=gpu,host=0000:01:00", // both
        "pcie=1",                      // neither
        "mapping=1gpu",                // not a pve-configid
        "0000:01:00,vendor-id=10de",   // override needs 0x
    ] {
        assert!(pve::hostpci(bad).is_err(), "{bad}");
    }
    assert!(pve::parse_property_string(pve::CPU, "host,hidden=1,hv-vendor-id=proxmox").is_ok());
    assert!(pve::parse_property_string(pve::CPU, "host,hv-vendor-id=thirteenchars").is_err());
    assert!(pve::parse_property_string(pve::CPU, "host,kvm=off").is_err());
    assert!(pve::parse_property_string(pve::MAP, "id=10de:2204,node=pve1,path=0000:01:00").is_ok());
    assert!(pve::parse_property_string(pve::MAP, "id=10de:2204,node=pve1,path=01:00").is_err());
    assert!(pve::parse_property_string(pve::MAP, "id=10de:2204,path=0000:01:00").is_err());
    assert!(pve::mapping_cfg("gpu\n\tmap id=10de:2204,node=a,path=0000:01:00\n").is_ok());
    assert!(pve::mapping_cfg("gpu\n\tmapp id=10de:2204,node=a,path=0000:01:00\n").is_err());
}
