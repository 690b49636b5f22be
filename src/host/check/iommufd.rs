//! iommufd and the VFIO device cdev (Linux 6.6+): does this kernel offer them, and can the
//! installed QEMU (9.0+: `-object iommufd`) and libvirt (a schema with `<driver iommufd=.../>`)
//! use them. None of these is needed: the legacy group/container interface keeps working, so
//! they never fail; QEMU and libvirt warn only when the kernel has iommufd and they cannot use it.
//!
//! Check ids: `iommufd` (kernel), `iommufd_qemu`, `iommufd_libvirt`.

use super::{ok, skipped, warn, Check};
use crate::host::HostRoot;

/// What a kernel config says about one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Yes,
    Module,
    No,
}

/// `CONFIG_<name>` in a kernel config text (`=y`, `=m`, `# ... is not set`, absent: No).
fn config_opt(config: &str, name: &str) -> Opt {
    let key = format!("CONFIG_{name}=");
    for l in config.lines().take(100_000) {
        if let Some(v) = l.strip_prefix(&key) {
            return match v.trim() {
                "y" => Opt::Yes,
                "m" => Opt::Module,
                _ => Opt::No,
            };
        }
    }
    Opt::No
}

/// The running kernel's config text and where it came from: `/boot/config-RELEASE` (the
/// compressed /proc/config.gz is not read: no gzip decoder here).
fn kernel_config(root: &HostRoot) -> Option<(String, String)> {
    let release = root.kernel_release()?;
    let rel = format!("boot/config-{release}");
    let text = root.read_file(&rel).ok().flatten()?;
    Some((format!("/{rel}"), text))
}

pub(super) fn checks(root: &HostRoot) -> Vec<Check> {
    let (kernel, has) = check_kernel(root);
    vec![kernel, check_qemu(root, has), check_libvirt(root, has)]
}

/// The kernel check, and whether the kernel offers iommufd and the cdev.
fn check_kernel(root: &HostRoot) -> (Check, bool) {
    let id = "iommufd";
    let dev_iommu = root.path("dev/iommu").exists();
    let class = root.sysfs.join("class/vfio-dev").is_dir();
    let cdevs = root
        .sysfs
        .list_devices()
        .unwrap_or_default()
        .iter()
        .filter(|a| root.sysfs.device_dir(a).join("vfio-dev").is_dir())
        .count();
    let config = kernel_config(root).map(|(path, text)| {
        let f = |o: Opt| match o {
            Opt::Yes => "y",
            Opt::Module => "m",
            Opt::No => "not set",
        };
        format!(
            "{path}: CONFIG_IOMMUFD {}, CONFIG_VFIO_DEVICE_CDEV {}",
            f(config_opt(&text, "IOMMUFD")),
            f(config_opt(&text, "VFIO_DEVICE_CDEV"))
        )
    });
    let facts = format!(
        "/dev/iommu {}, vfio-dev class {}, {cdevs} device(s) with a cdev{}",
        if dev_iommu { "present" } else { "absent" },
        if class { "present" } else { "absent" },
        config.map(|c| format!("; {c}")).unwrap_or_default()
    );
    let has = dev_iommu && class;
    let check = if has {
        ok(
            id,
            false,
            format!("the kernel has iommufd and the VFIO device cdev ({facts}); bind proves through them"),
        )
    } else {
        // Not a problem: the legacy group interface is what every VM manager uses by default.
        ok(
            id,
            false,
            format!(
                "no iommufd/VFIO device cdev ({facts}): the legacy group interface is used; for QEMU's \
                 iommufd backend a kernel needs CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV (Linux 6.6+; \
                 Proxmox and Ubuntu kernels have them, Debian's do not)"
            ),
        )
    };
    (check, has)
}

/// `qemu-system-x86_64 -object help` lists `iommufd` on QEMU 9.0+.
fn check_qemu(root: &HostRoot, kernel_has: bool) -> Check {
    let id = "iommufd_qemu";
    if !root.is_live() {
        return skipped(id, "a captured tree: the installed QEMU is not run");
    }
    let bin = "qemu-system-x86_64";
    let version = std::process::Command::new(bin).arg("--version").output();
    let Ok(version) = version else {
        return skipped(id, format!("{bin} is not installed"));
    };
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let objects = std::process::Command::new(bin)
        .args(["-nodefaults", "-machine", "none", "-object", "help"])
        .output();
    let has = objects.as_ref().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == "iommufd")
    });
    if has {
        ok(
            id,
            false,
            format!("{version}: has the iommufd backend (-object iommufd; `config --for qemu --iommufd`)"),
        )
    } else if !kernel_has {
        ok(
            id,
            false,
            format!("{version}: no iommufd backend (QEMU 9.0+ has it); the kernel has none either"),
        )
    } else {
        warn(
            id,
            false,
            format!("{version}: no iommufd backend in `-object help` (QEMU 9.0+ has it)"),
            "QEMU keeps using the legacy VFIO group interface; for iommufd install QEMU 9.0 or newer",
        )
    }
}

/// libvirt's domain schema names `iommufd` (the `<driver iommufd='yes'/>` of a hostdev) from
/// about 12.x.
fn check_libvirt(root: &HostRoot, kernel_has: bool) -> Check {
    let id = "iommufd_libvirt";
    let rel = "usr/share/libvirt/schemas/domaincommon.rng";
    match root.read_file(rel) {
        Ok(Some(text)) if libvirt_schema_has_iommufd(&text) => ok(
            id,
            false,
            format!("/{rel} has the hostdev driver attribute iommufd"),
        ),
        Ok(Some(_)) if !kernel_has => ok(
            id,
            false,
            format!("/{rel} has no iommufd attribute; the kernel has no iommufd either"),
        ),
        Ok(Some(_)) => warn(
            id,
            false,
            format!("/{rel} has no iommufd attribute: this libvirt cannot ask for the iommufd backend"),
            "libvirt keeps using the legacy VFIO interface; a newer libvirt (about 12.x) has <driver iommufd='yes'/>",
        ),
        _ => skipped(id, format!("libvirt is not installed (no /{rel})")),
    }
}

/// Whether a libvirt domain schema text has the `iommufd` attribute.
pub(crate) fn libvirt_schema_has_iommufd(rng: &str) -> bool {
    rng.contains("<attribute name=\"iommufd\">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_options_are_read_exactly() {
        let c = "CONFIG_IOMMUFD=y\n# CONFIG_VFIO_DEVICE_CDEV is not set\nCONFIG_IOMMUFD_TEST=m\n";
        assert_eq!(config_opt(c, "IOMMUFD"), Opt::Yes);
        assert_eq!(config_opt(c, "VFIO_DEVICE_CDEV"), Opt::No);
        assert_eq!(config_opt(c, "IOMMUFD_TEST"), Opt::Module);
    }

    #[test]
    fn kernel_support_is_reported_and_libvirt_warns_only_when_the_kernel_has_it() {
        let t = tempfile::tempdir().unwrap();
        let r = HostRoot::under(t.path());
        std::fs::create_dir_all(t.path().join("proc/sys/kernel")).unwrap();
        std::fs::write(t.path().join("proc/sys/kernel/osrelease"), "6.12.9-amd64\n").unwrap();
        std::fs::create_dir_all(t.path().join("boot")).unwrap();
        std::fs::write(
            t.path().join("boot/config-6.12.9-amd64"),
            "# CONFIG_IOMMUFD is not set\n",
        )
        .unwrap();
        let (c, has) = check_kernel(&r);
        assert!(!has);
        assert_eq!(c.status, super::super::Status::Ok);
        assert!(c.message.contains("CONFIG_IOMMUFD not set"), "{}", c.message);
        assert!(
            c.message.contains("legacy group interface is used"),
            "{}",
            c.message
        );
        std::fs::create_dir_all(t.path().join("dev")).unwrap();
        std::fs::write(t.path().join("dev/iommu"), "").unwrap();
        std::fs::create_dir_all(t.path().join("sys/class/vfio-dev")).unwrap();
        let (c, has) = check_kernel(&r);
        assert!(has);
        assert_eq!(c.status, super::super::Status::Ok, "{}", c.message);
        assert!(!c.needed);
        // The kernel has it: a libvirt that cannot ask for it is worth a warning.
        let rng = t.path().join("usr/share/libvirt/schemas");
        std::fs::create_dir_all(&rng).unwrap();
        std::fs::write(rng.join("domaincommon.rng"), "<attribute name=\"type\">").unwrap();
        assert_eq!(check_libvirt(&r, true).status, super::super::Status::Warn);
        assert_eq!(check_libvirt(&r, false).status, super::super::Status::Ok);
    }

    #[test]
    fn libvirt_schema_attribute_is_recognised() {
        assert!(libvirt_schema_has_iommufd(
            "<optional><attribute name=\"iommufd\"><ref name=\"virYesNo\"/></attribute></optional>"
        ));
        assert!(!libvirt_schema_has_iommufd("<attribute name=\"type\">"));
    }
}
