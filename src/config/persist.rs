//! `vfiotool persist`: bind devices to vfio-pci at every boot, by PCI address (not by
//! vendor:device ID, which would also take a second identical GPU).
//!
//! Two methods, chosen by what the host has:
//! - driverctl installed: its own override files (/etc/driverctl.d/pci-ADDRESS holding the
//!   driver name), which its udev rule applies when the device appears.
//! - otherwise modprobe: /etc/modprobe.d/vfiotool.conf makes loading vfio-pci first run a small
//!   script that writes `vfio-pci` into each device's driver_override, and softdeps make vfio-pci
//!   load before the devices' host drivers; an initramfs hook/drop-in puts both into the
//!   initramfs so the binding happens before a GPU driver there can claim the device.
//!
//! Everything it writes is listed in a manifest (/etc/vfiotool/persist.json) with the backup of
//! any file it replaced, so `--remove` undoes exactly what it did. All paths are below a root
//! (`/` on a live host, a scratch directory in tests); writes are atomic.

use crate::host::under;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

pub const MANIFEST: &str = "/etc/vfiotool/persist.json";
pub const MODPROBE_CONF: &str = "/etc/modprobe.d/vfiotool.conf";
pub const OVERRIDE_SCRIPT: &str = "/usr/lib/vfiotool/vfio-pci-override.sh";
pub const INITRAMFS_TOOLS_HOOK: &str = "/etc/initramfs-tools/hooks/vfiotool";
pub const DRACUT_CONF: &str = "/etc/dracut.conf.d/vfiotool.conf";
pub const MKINITCPIO_CONF: &str = "/etc/mkinitcpio.conf.d/vfiotool.conf";
pub const DRIVERCTL_DIR: &str = "/etc/driverctl.d";
/// Module options the guides add besides the binding (`--kvm-ignore-msrs`, `--disable-vga`).
pub const OPTIONS_CONF: &str = "/etc/modprobe.d/vfiotool-options.conf";

/// The opt-in module options, kept in the manifest until the last `--remove`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleOptions {
    /// `options kvm ignore_msrs=1 report_ignored_msrs=0`: KVM answers unknown MSR reads with 0
    /// instead of injecting #GP (which crashes guests and tools that probe them) and does not
    /// log each one.
    #[serde(default)]
    pub kvm_ignore_msrs: bool,
    /// `options vfio-pci disable_vga=1`: vfio-pci opts its devices out of VGA arbitration.
    #[serde(default)]
    pub disable_vga: bool,
}

impl ModuleOptions {
    pub fn any(self) -> bool {
        self.kvm_ignore_msrs || self.disable_vga
    }

    /// Both sets together: options once persisted stay until the last `--remove`.
    pub fn union(self, other: ModuleOptions) -> ModuleOptions {
        ModuleOptions {
            kvm_ignore_msrs: self.kvm_ignore_msrs || other.kvm_ignore_msrs,
            disable_vga: self.disable_vga || other.disable_vga,
        }
    }

    fn file(self) -> String {
        let mut conf = format!("{MARKER}; `vfiotool persist --remove` undoes it.\n");
        if self.kvm_ignore_msrs {
            conf.push_str("# Guests that read MSRs KVM does not emulate get 0 instead of a fault.\n");
            conf.push_str("options kvm ignore_msrs=1 report_ignored_msrs=0\n");
        }
        if self.disable_vga {
            conf.push_str("# vfio-pci keeps its devices out of the host's VGA arbitration.\n");
            conf.push_str("options vfio-pci disable_vga=1\n");
        }
        conf
    }
}

/// The first line of every file vfiotool writes: how it recognises its own files.
pub const MARKER: &str = "# Written by vfiotool persist";

/// How the binding is made persistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Modprobe,
    Driverctl,
}

/// The initramfs generator this host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Initramfs {
    InitramfsTools,
    Dracut,
    Mkinitcpio,
    None,
}

impl Initramfs {
    /// The command that rebuilds the initramfs so the change takes effect at boot.
    pub fn command(self, proxmox_boot_tool: bool) -> Option<String> {
        let base = match self {
            Initramfs::InitramfsTools => "update-initramfs -u -k all",
            Initramfs::Dracut => "dracut --regenerate-all --force",
            Initramfs::Mkinitcpio => "mkinitcpio -P",
            Initramfs::None => return None,
        };
        Some(if proxmox_boot_tool {
            format!("{base} && proxmox-boot-tool refresh")
        } else {
            base.to_string()
        })
    }
}

/// What the host offers, read below `root`.
#[derive(Debug, Clone, Serialize)]
pub struct HostTools {
    pub driverctl: bool,
    pub initramfs: Initramfs,
    pub proxmox_boot_tool: bool,
}

fn exists_any(root: &Path, paths: &[&str]) -> bool {
    paths.iter().any(|p| under(root, p).exists())
}

pub fn detect(root: &Path) -> HostTools {
    let initramfs = if exists_any(root, &["/usr/sbin/update-initramfs", "/sbin/update-initramfs"]) {
        Initramfs::InitramfsTools
    } else if exists_any(root, &["/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"]) {
        Initramfs::Dracut
    } else if exists_any(root, &["/usr/bin/mkinitcpio", "/sbin/mkinitcpio"]) {
        Initramfs::Mkinitcpio
    } else {
        Initramfs::None
    };
    HostTools {
        driverctl: exists_any(
            root,
            &["/usr/sbin/driverctl", "/usr/bin/driverctl", "/sbin/driverctl"],
        ),
        initramfs,
        proxmox_boot_tool: exists_any(root, &["/usr/sbin/proxmox-boot-tool"]),
    }
}

/// One file vfiotool owns, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedFile {
    pub path: String,
    /// Where the file that was there before was moved, if there was one that was not ours.
    pub backup: Option<String>,
}

/// The manifest: what is persisted and which files say so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub devices: Vec<String>,
    /// Host drivers that vfio-pci must load before (softdeps), per the devices' drivers.
    pub softdeps: Vec<String>,
    pub method: Option<Method>,
    pub files: Vec<OwnedFile>,
    /// Directories persist created (outermost first), removed again when empty on the last
    /// `--remove`.
    #[serde(default)]
    pub dirs: Vec<String>,
    /// The opt-in module options written to OPTIONS_CONF.
    #[serde(default)]
    pub options: ModuleOptions,
}

pub fn read_manifest(root: &Path) -> Result<Manifest> {
    let path = under(root, MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_input(format!(
                "{}: not a vfiotool manifest ({e}); move it away to start over",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(Error::io(&path, "read", &e)),
    }
}

/// What a plan does to one file (JSON: the lowercase name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    Create,
    Replace,
    /// Put back the backup of a file vfiotool had replaced.
    Restore,
    Remove,
    Unchanged,
}

impl FileAction {
    pub fn name(self) -> &'static str {
        match self {
            FileAction::Create => "create",
            FileAction::Replace => "replace",
            FileAction::Restore => "restore",
            FileAction::Remove => "remove",
            FileAction::Unchanged => "unchanged",
        }
    }
}

/// One planned change of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    pub action: FileAction,
    #[serde(skip)]
    pub old: Option<String>,
    #[serde(skip)]
    pub new: Option<String>,
    pub mode: u32,
    /// For "replace" of a file that is not ours: where it is moved first.
    pub backup: Option<String>,
    /// A unified diff of the change.
    pub diff: String,
}

/// Everything `persist` (or `persist --remove`) will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub method: Method,
    pub devices: Vec<String>,
    /// The module options in force after this run.
    pub options: ModuleOptions,
    pub changes: Vec<FileChange>,
    /// The command that rebuilds the initramfs (run only with --yes).
    pub initramfs_command: Option<String>,
    pub notes: Vec<String>,
    #[serde(skip)]
    manifest: Manifest,
}

/// The desired files for a set of devices and softdeps.
fn desired_files(
    method: Method,
    tools: &HostTools,
    devices: &[String],
    softdeps: &[String],
    options: ModuleOptions,
) -> Vec<(String, String, u32)> {
    let mut files = Vec::new();
    if devices.is_empty() {
        return files;
    }
    // The options file goes into the initramfs with the rest: dracut and mkinitcpio name it.
    let options_item = if options.any() {
        files.push((OPTIONS_CONF.to_string(), options.file(), 0o644));
        format!(" {OPTIONS_CONF}")
    } else {
        String::new()
    };
    match method {
        Method::Driverctl => {
            for d in devices {
                files.push((
                    format!("{DRIVERCTL_DIR}/pci-{d}"),
                    "vfio-pci\n".to_string(),
                    0o644,
                ));
            }
        }
        Method::Modprobe => {
            let mut script = format!(
                "#!/bin/sh\n{MARKER}; `vfiotool persist --remove` undoes it.\n\
                 # Runs when vfio-pci is loaded: claim these devices by address before any other driver.\n"
            );
            script.push_str(&format!("for dev in {}; do\n", devices.join(" ")));
            script.push_str(
                "    f=/sys/bus/pci/devices/$dev/driver_override\n    [ -w \"$f\" ] && echo vfio-pci > \"$f\"\ndone\nexit 0\n",
            );
            files.push((OVERRIDE_SCRIPT.to_string(), script, 0o755));
            let mut conf = format!(
                "{MARKER}; `vfiotool persist --remove` undoes it.\n\
                 # Devices: {}\n\
                 install vfio-pci {OVERRIDE_SCRIPT}; /sbin/modprobe --ignore-install vfio-pci $CMDLINE_OPTS\n",
                devices.join(" ")
            );
            for driver in softdeps {
                conf.push_str(&format!("softdep {driver} pre: vfio-pci\n"));
            }
            files.push((MODPROBE_CONF.to_string(), conf, 0o644));
            match tools.initramfs {
                Initramfs::InitramfsTools => files.push((
                    INITRAMFS_TOOLS_HOOK.to_string(),
                    format!(
                        "#!/bin/sh\n{MARKER}; `vfiotool persist --remove` undoes it.\n\
                         PREREQ=\"\"\nprereqs() {{ echo \"$PREREQ\"; }}\n\
                         case \"$1\" in prereqs) prereqs; exit 0 ;; esac\n\
                         . /usr/share/initramfs-tools/hook-functions\n\
                         copy_exec {OVERRIDE_SCRIPT}\n\
                         force_load vfio-pci\n"
                    ),
                    0o755,
                )),
                Initramfs::Dracut => files.push((
                    DRACUT_CONF.to_string(),
                    format!(
                        "{MARKER}; `vfiotool persist --remove` undoes it.\n\
                         force_drivers+=\" vfio-pci \"\n\
                         install_items+=\" {OVERRIDE_SCRIPT} {MODPROBE_CONF}{options_item} \"\n"
                    ),
                    0o644,
                )),
                Initramfs::Mkinitcpio => files.push((
                    MKINITCPIO_CONF.to_string(),
                    format!(
                        "{MARKER}; `vfiotool persist --remove` undoes it.\n\
                         MODULES+=(vfio_pci vfio vfio_iommu_type1)\n\
                         FILES+=({OVERRIDE_SCRIPT} {MODPROBE_CONF}{options_item})\n"
                    ),
                    0o644,
                )),
                Initramfs::None => {}
            }
        }
    }
    files
}

fn unified_diff(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let diff = similar::TextDiff::from_lines(old.unwrap_or(""), new.unwrap_or(""));
    let from = if old.is_some() {
        path.to_string()
    } else {
        "/dev/null".into()
    };
    let to = if new.is_some() {
        path.to_string()
    } else {
        "/dev/null".into()
    };
    diff.unified_diff().header(&from, &to).to_string()
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "read", &e)),
    }
}

/// Plan the move from what the manifest says to `devices` (empty = remove everything).
pub fn plan(
    root: &Path,
    tools: &HostTools,
    devices: Vec<String>,
    softdeps: Vec<String>,
    options: ModuleOptions,
) -> Result<Plan> {
    let current = read_manifest(root)?;
    let method = current.method.unwrap_or(if tools.driverctl {
        Method::Driverctl
    } else {
        Method::Modprobe
    });
    let options = if devices.is_empty() {
        ModuleOptions::default()
    } else {
        options
    };
    let desired = desired_files(method, tools, &devices, &softdeps, options);
    let mut changes = Vec::new();
    let mut owned = Vec::new();
    for (path, content, mode) in &desired {
        let old = read_optional(&under(root, path))?;
        let previous = current.files.iter().find(|f| &f.path == path);
        let ours = previous.is_some();
        let action = match &old {
            None => FileAction::Create,
            Some(o) if o == content => FileAction::Unchanged,
            Some(_) => FileAction::Replace,
        };
        let backup = match (&old, ours, action) {
            (Some(_), false, FileAction::Replace) => Some(format!("{path}.vfiotool-backup")),
            _ => previous.and_then(|p| p.backup.clone()),
        };
        owned.push(OwnedFile {
            path: path.clone(),
            backup: backup.clone(),
        });
        changes.push(FileChange {
            path: path.clone(),
            action,
            diff: unified_diff(path, old.as_deref(), Some(content)),
            old,
            new: Some(content.clone()),
            mode: *mode,
            backup: if ours { None } else { backup },
        });
    }
    for file in current
        .files
        .iter()
        .filter(|f| !desired.iter().any(|(p, _, _)| *p == f.path))
    {
        let old = read_optional(&under(root, &file.path))?;
        let restored = match &file.backup {
            Some(b) => read_optional(&under(root, b))?,
            None => None,
        };
        changes.push(FileChange {
            path: file.path.clone(),
            action: if restored.is_some() {
                FileAction::Restore
            } else {
                FileAction::Remove
            },
            diff: unified_diff(&file.path, old.as_deref(), restored.as_deref()),
            old,
            new: restored,
            mode: 0o644,
            backup: file.backup.clone(),
        });
    }
    let mut notes = Vec::new();
    if method == Method::Driverctl {
        notes.push(
            "driverctl is installed: using its override files, which its udev rule applies at boot".into(),
        );
    } else if tools.initramfs == Initramfs::None {
        notes.push(
            "no initramfs generator found: the binding happens when vfio-pci loads from the root filesystem"
                .into(),
        );
    }
    let initramfs_command = match method {
        Method::Modprobe => tools.initramfs.command(tools.proxmox_boot_tool),
        Method::Driverctl => None,
    };
    let manifest = Manifest {
        method: (!devices.is_empty()).then_some(method),
        devices: devices.clone(),
        softdeps,
        files: owned,
        dirs: current.dirs,
        options,
    };
    Ok(Plan {
        method,
        devices,
        options,
        changes,
        initramfs_command,
        notes,
        manifest,
    })
}

/// Carry out a plan below `root`: back up foreign files, write ours atomically, remove or
/// restore what is no longer wanted, then write (or delete) the manifest. Returns the paths changed.
pub fn apply(root: &Path, plan: &Plan) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut done = Vec::new();
    let mut dirs = plan.manifest.dirs.clone();
    for c in plan.changes.iter().filter(|c| c.action != FileAction::Unchanged) {
        let target = under(root, &c.path);
        if let Some(parent) = Path::new(&c.path).parent() {
            create_dirs(root, parent, &mut dirs)?;
        }
        match (c.action, &c.new) {
            (FileAction::Create | FileAction::Replace, Some(content)) => {
                if let (Some(backup), FileAction::Replace) = (&c.backup, c.action) {
                    let b = under(root, backup);
                    fs::copy(&target, &b).map_err(|e| Error::io(&b, "back up", &e))?;
                }
                fsutil::atomic_write(&target, content.as_bytes(), true)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(c.mode))
                    .map_err(|e| Error::io(&target, "chmod", &e))?;
            }
            (FileAction::Restore, Some(content)) => {
                fsutil::atomic_write(&target, content.as_bytes(), true)?;
                if let Some(b) = &c.backup {
                    let b = under(root, b);
                    fs::remove_file(&b).map_err(|e| Error::io(&b, "remove backup", &e))?;
                }
            }
            (FileAction::Remove, _) => match fs::remove_file(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&target, "remove", &e)),
            },
            (FileAction::Unchanged, _) => {}
            // A write without content is a planner bug: refuse rather than delete the file.
            (FileAction::Create | FileAction::Replace | FileAction::Restore, None) => {
                return Err(Error::system(format!(
                    "{}: planned to {} without content; nothing written for it",
                    c.path,
                    c.action.name()
                )))
            }
        }
        done.push(c.path.clone());
    }
    let manifest_path = under(root, MANIFEST);
    if plan.manifest.devices.is_empty() {
        match fs::remove_file(&manifest_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&manifest_path, "remove", &e)),
        }
        // Innermost first; a directory something else has put files into stays.
        for dir in dirs.iter().rev() {
            let _ = fs::remove_dir(under(root, dir));
        }
    } else {
        if let Some(parent) = Path::new(MANIFEST).parent() {
            create_dirs(root, parent, &mut dirs)?;
        }
        let manifest = Manifest {
            dirs,
            ..plan.manifest.clone()
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::system(e.to_string()))?;
        fsutil::atomic_write(&manifest_path, &json, true)?;
    }
    Ok(done)
}

/// Create `dir` (absolute on the host) below `root`, recording each directory this creates.
fn create_dirs(root: &Path, dir: &Path, created: &mut Vec<String>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d == Path::new("/") || under(root, &d.to_string_lossy()).exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        let path = under(root, &d.to_string_lossy());
        fs::create_dir(&path).map_err(|e| Error::io(&path, "create directory", &e))?;
        created.push(d.to_string_lossy().into_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(initramfs: Initramfs) -> HostTools {
        HostTools {
            driverctl: false,
            initramfs,
            proxmox_boot_tool: false,
        }
    }

    fn snapshot(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.strip_prefix(root).unwrap().to_path_buf(), fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn persist_then_remove_restores_the_root_exactly() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc/modprobe.d")).unwrap();
        fs::write(r.join("etc/modprobe.d/vfiotool.conf"), "options something\n").unwrap();
        fs::write(r.join("etc/modprobe.d/other.conf"), "blacklist nouveau\n").unwrap();
        let before = snapshot(r);
        let t = tools(Initramfs::InitramfsTools);
        let devices = vec!["0000:01:00.0".to_string(), "0000:01:00.1".to_string()];
        let p = plan(
            r,
            &t,
            devices.clone(),
            vec!["nouveau".into(), "snd_hda_intel".into()],
            ModuleOptions::default(),
        )
        .unwrap();
        assert_eq!(p.initramfs_command.as_deref(), Some("update-initramfs -u -k all"));
        let conf = p.changes.iter().find(|c| c.path == MODPROBE_CONF).unwrap();
        assert_eq!(conf.action, FileAction::Replace);
        assert_eq!(
            conf.backup.as_deref(),
            Some("/etc/modprobe.d/vfiotool.conf.vfiotool-backup")
        );
        assert!(conf.diff.contains("-options something"), "{}", conf.diff);
        assert!(conf.diff.contains("+softdep nouveau pre: vfio-pci"));
        apply(r, &p).unwrap();
        let script = fs::read_to_string(under(r, OVERRIDE_SCRIPT)).unwrap();
        assert!(script.contains("for dev in 0000:01:00.0 0000:01:00.1; do"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(under(r, OVERRIDE_SCRIPT))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert!(fs::read_to_string(under(r, INITRAMFS_TOOLS_HOOK))
            .unwrap()
            .contains("force_load vfio-pci"));
        assert_eq!(
            fs::read_to_string(r.join("etc/modprobe.d/vfiotool.conf.vfiotool-backup")).unwrap(),
            "options something\n"
        );
        let m = read_manifest(r).unwrap();
        assert_eq!(m.devices, devices);

        // Running it again changes nothing.
        let again = plan(
            r,
            &t,
            devices,
            vec!["nouveau".into(), "snd_hda_intel".into()],
            ModuleOptions::default(),
        )
        .unwrap();
        assert!(
            again.changes.iter().all(|c| c.action == FileAction::Unchanged),
            "{:?}",
            again.changes
        );

        let removal = plan(r, &t, vec![], vec![], ModuleOptions::default()).unwrap();
        apply(r, &removal).unwrap();
        assert_eq!(snapshot(r), before, "remove undoes exactly what persist did");
    }

    #[test]
    fn driverctl_hosts_get_driverctl_overrides() {
        let root = tempfile::tempdir().unwrap();
        let t = HostTools {
            driverctl: true,
            ..tools(Initramfs::Dracut)
        };
        let p = plan(
            root.path(),
            &t,
            vec!["0000:0a:00.0".into()],
            vec![],
            ModuleOptions::default(),
        )
        .unwrap();
        assert_eq!(p.method, Method::Driverctl);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].path, "/etc/driverctl.d/pci-0000:0a:00.0");
        assert_eq!(p.changes[0].new.as_deref(), Some("vfio-pci\n"));
        assert!(p.initramfs_command.is_none());
    }

    #[test]
    fn module_options_are_opt_in_and_go_with_the_last_device() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc/modprobe.d")).unwrap();
        let before = snapshot(r);
        let t = tools(Initramfs::Dracut);
        let dev = vec!["0000:01:00.0".to_string()];
        let p = plan(r, &t, dev.clone(), vec![], ModuleOptions::default()).unwrap();
        assert!(!p.changes.iter().any(|c| c.path == OPTIONS_CONF), "opt-in only");
        let both = ModuleOptions {
            kvm_ignore_msrs: true,
            disable_vga: true,
        };
        let p = plan(r, &t, dev.clone(), vec![], both).unwrap();
        let conf = p.changes.iter().find(|c| c.path == OPTIONS_CONF).unwrap();
        let text = conf.new.as_deref().unwrap();
        assert!(
            text.contains("\noptions kvm ignore_msrs=1 report_ignored_msrs=0\n"),
            "{text}"
        );
        assert!(text.contains("\noptions vfio-pci disable_vga=1\n"), "{text}");
        let dracut = p.changes.iter().find(|c| c.path == DRACUT_CONF).unwrap();
        assert!(dracut.new.as_deref().unwrap().contains(OPTIONS_CONF));
        apply(r, &p).unwrap();
        assert_eq!(read_manifest(r).unwrap().options, both);
        let removal = plan(r, &t, vec![], vec![], read_manifest(r).unwrap().options).unwrap();
        assert_eq!(removal.options, ModuleOptions::default());
        apply(r, &removal).unwrap();
        assert_eq!(snapshot(r), before, "remove undoes the options file too");
    }

    #[test]
    fn detects_the_initramfs_generator() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(detect(root.path()).initramfs, Initramfs::None);
        fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        fs::write(root.path().join("usr/bin/dracut"), "").unwrap();
        assert_eq!(detect(root.path()).initramfs, Initramfs::Dracut);
        assert_eq!(
            Initramfs::InitramfsTools.command(true).unwrap(),
            "update-initramfs -u -k all && proxmox-boot-tool refresh"
        );
    }
}
