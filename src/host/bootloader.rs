//! Which boot loader owns the kernel command line, and how to change it in its own terms.
//!
//! Detection order (first match wins), from the files each one owns:
//! 1. kernelstub (Pop!_OS): `/etc/kernelstub/configuration`;
//! 2. systemd-boot managed by Proxmox: `/etc/kernel/proxmox-boot-uuids` with `/etc/kernel/cmdline`;
//! 3. GRUB: `/etc/default/grub`;
//! 4. systemd-boot / kernel-install: `/etc/kernel/cmdline`;
//! 5. unknown.
//!
//! The configured arguments are read back so `check` can tell "configured but not active yet"
//! (a reboot or an update-grub away) from "not configured".

use serde::Serialize;

use crate::host::HostRoot;

/// A boot loader kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Kernelstub,
    ProxmoxBootTool,
    Grub,
    SystemdBoot,
    Unknown,
}

/// What was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootLoader {
    pub kind: Kind,
    /// The file that holds the command line (relative to the root, e.g. `etc/default/grub`).
    pub config: Option<String>,
    /// The arguments it configures (GRUB: LINUX_DEFAULT then LINUX; others: the whole line).
    pub configured_args: Vec<String>,
}

/// Strip one level of matching quotes.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Arguments of `GRUB_CMDLINE_LINUX_DEFAULT` and `GRUB_CMDLINE_LINUX` (last assignment wins).
pub fn grub_args(text: &str) -> Vec<String> {
    let mut default = String::new();
    let mut linux = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("GRUB_CMDLINE_LINUX_DEFAULT=") {
            default = unquote(v).to_string();
        } else if let Some(v) = line.strip_prefix("GRUB_CMDLINE_LINUX=") {
            linux = unquote(v).to_string();
        }
    }
    default
        .split_whitespace()
        .chain(linux.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// Look at the root's files and tell which boot loader is in charge.
pub fn detect(root: &HostRoot) -> BootLoader {
    let read = |rel: &str| root.read_file(rel).ok().flatten();
    let exists = |rel: &str| root.path(rel).exists();
    if let Some(text) = read("etc/kernelstub/configuration") {
        // JSON: {"user": {"kernel_options": ["quiet", ...]}}; read it without trusting its shape.
        let args = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("user")?.get("kernel_options")?.as_array().cloned())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        return BootLoader {
            kind: Kind::Kernelstub,
            config: Some("etc/kernelstub/configuration".into()),
            configured_args: args,
        };
    }
    let kernel_cmdline = read("etc/kernel/cmdline");
    if exists("etc/kernel/proxmox-boot-uuids") {
        if let Some(text) = &kernel_cmdline {
            return BootLoader {
                kind: Kind::ProxmoxBootTool,
                config: Some("etc/kernel/cmdline".into()),
                configured_args: text.split_whitespace().map(str::to_string).collect(),
            };
        }
    }
    if let Some(text) = read("etc/default/grub") {
        return BootLoader {
            kind: Kind::Grub,
            config: Some("etc/default/grub".into()),
            configured_args: grub_args(&text),
        };
    }
    if let Some(text) = kernel_cmdline {
        return BootLoader {
            kind: Kind::SystemdBoot,
            config: Some("etc/kernel/cmdline".into()),
            configured_args: text.split_whitespace().map(str::to_string).collect(),
        };
    }
    BootLoader {
        kind: Kind::Unknown,
        config: None,
        configured_args: Vec::new(),
    }
}

impl BootLoader {
    /// Human name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Kernelstub => "kernelstub (Pop!_OS, systemd-boot)",
            Kind::ProxmoxBootTool => "systemd-boot via proxmox-boot-tool (Proxmox)",
            Kind::Grub => "GRUB",
            Kind::SystemdBoot => "systemd-boot (/etc/kernel/cmdline)",
            Kind::Unknown => "unknown boot loader",
        }
    }

    /// Is `arg` (exact, or `key=` prefix when `arg` ends with `=`) in the configured arguments?
    pub fn configures(&self, arg: &str) -> bool {
        self.configured_args.iter().any(|a| {
            if arg.ends_with('=') {
                a.starts_with(arg)
            } else {
                a == arg
            }
        })
    }

    /// The exact steps to add `add` and remove `remove` on this host, ending with the reboot.
    pub fn fix(&self, add: &[&str], remove: &[&str]) -> String {
        let add_s = add.join(" ");
        let mut steps = Vec::new();
        match self.kind {
            Kind::Kernelstub => {
                if !add.is_empty() {
                    steps.push(format!("sudo kernelstub -a \"{add_s}\""));
                }
                for r in remove {
                    steps.push(format!("sudo kernelstub -d \"{r}\""));
                }
            }
            Kind::ProxmoxBootTool | Kind::SystemdBoot => {
                let mut edit = String::from("edit /etc/kernel/cmdline (one line)");
                if !add.is_empty() {
                    edit.push_str(&format!(": append {add_s}"));
                }
                if !remove.is_empty() {
                    edit.push_str(&format!("; remove {}", remove.join(" ")));
                }
                steps.push(edit);
                steps.push(if self.kind == Kind::ProxmoxBootTool {
                    "proxmox-boot-tool refresh".to_string()
                } else {
                    "kernel-install add $(uname -r) /lib/modules/$(uname -r)/vmlinuz (or reinstall the kernel)"
                        .to_string()
                });
            }
            Kind::Grub => {
                let mut edit = String::from("edit /etc/default/grub: in GRUB_CMDLINE_LINUX_DEFAULT");
                if !add.is_empty() {
                    edit.push_str(&format!(" add {add_s}"));
                }
                if !remove.is_empty() {
                    if !add.is_empty() {
                        edit.push(',');
                    }
                    edit.push_str(&format!(" remove {}", remove.join(" ")));
                }
                steps.push(edit);
                steps.push(
                    "update-grub (Fedora/RHEL: grub2-mkconfig -o /boot/grub2/grub.cfg, or grubby --update-kernel=ALL)"
                        .to_string(),
                );
            }
            Kind::Unknown => {
                let mut s = String::from("add to the kernel command line of your boot loader");
                if !add.is_empty() {
                    s.push_str(&format!(": {add_s}"));
                }
                if !remove.is_empty() {
                    s.push_str(&format!("; remove {}", remove.join(" ")));
                }
                steps.push(s);
            }
        }
        steps.push("reboot, then run vfiotool check again".into());
        steps.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let root = HostRoot::under(dir.path());
        (dir, root)
    }

    #[test]
    fn grub() {
        let (_d, root) = tree(&[(
            "etc/default/grub",
            "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\nGRUB_CMDLINE_LINUX=\"\"\n",
        )]);
        let b = detect(&root);
        assert_eq!(b.kind, Kind::Grub);
        assert_eq!(b.configured_args, ["quiet", "intel_iommu=on"]);
        assert!(b.configures("intel_iommu=on"));
        assert!(b.configures("intel_iommu="));
        assert!(!b.configures("iommu=pt"));
        let fix = b.fix(&["iommu=pt"], &[]);
        assert!(
            fix.starts_with(
                "edit /etc/default/grub: in GRUB_CMDLINE_LINUX_DEFAULT add iommu=pt\nupdate-grub"
            ),
            "{fix}"
        );
    }

    #[test]
    fn proxmox_wins_over_grub_and_kernelstub_wins_over_all() {
        let (_d, root) = tree(&[
            ("etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"),
            ("etc/kernel/cmdline", "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n"),
            ("etc/kernel/proxmox-boot-uuids", "ABCD-1234\n"),
        ]);
        let b = detect(&root);
        assert_eq!(b.kind, Kind::ProxmoxBootTool);
        assert!(b
            .fix(&["intel_iommu=on"], &[])
            .contains("proxmox-boot-tool refresh"));
        let (_d2, root2) = tree(&[
            ("etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"),
            (
                "etc/kernelstub/configuration",
                r#"{"default": {"kernel_options": ["quiet"]}, "user": {"kernel_options": ["quiet", "splash"]}}"#,
            ),
        ]);
        let b = detect(&root2);
        assert_eq!(b.kind, Kind::Kernelstub);
        assert_eq!(b.configured_args, ["quiet", "splash"]);
        assert_eq!(
            b.fix(&["amd_iommu=on", "iommu=pt"], &["pcie_acs_override=downstream"]),
            "sudo kernelstub -a \"amd_iommu=on iommu=pt\"\nsudo kernelstub -d \"pcie_acs_override=downstream\"\nreboot, then run vfiotool check again"
        );
    }

    #[test]
    fn unknown() {
        let (_d, root) = tree(&[]);
        let b = detect(&root);
        assert_eq!(b.kind, Kind::Unknown);
        assert!(b.fix(&["intel_iommu=on"], &[]).contains("intel_iommu=on"));
    }
}
