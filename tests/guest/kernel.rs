//! The guest kernels: Debian's kernel packages downloaded once and unpacked into a cache outside
//! the repo, the modules a machine needs in dependency order (from each .ko's `depends=`; the
//! package ships no modules.dep and the host may have no kmod), and the project's own test
//! module built against the matching headers.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{copy, repo, run, work_dir};

/// The Debian kernel flavours the guests boot. Cloud boots in about half the time; generic has
/// the DRM and sound drivers a GPU needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavour {
    Cloud,
    Generic,
    /// Debian's linux-source-6.12 built by tests/guest/build-iommufd-kernel.sh: iommufd, the
    /// VFIO device cdev and the legacy container, all built in (no modules).
    Iommufd,
}

impl Flavour {
    /// The metapackage whose dependency names the current kernel package.
    pub fn meta(self) -> &'static str {
        match self {
            Flavour::Cloud => "linux-image-cloud-amd64",
            Flavour::Generic => "linux-image-amd64",
            Flavour::Iommufd => "linux-source-6.12",
        }
    }
}

/// Where kernels and headers are kept between runs (and between clones): outside the repo.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("VFIOTOOL_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/vfiotool-tests"))
}

/// `apt-cache depends PKG` (after one `apt-get update` when the lists do not know PKG).
fn apt_depends(pkg: &str) -> Result<String, String> {
    match run(Command::new("apt-cache").args(["depends", pkg]), "apt-cache") {
        Ok(d) if d.contains("Depends:") => Ok(d),
        _ => {
            run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
            run(Command::new("apt-cache").args(["depends", pkg]), "apt-cache")
        }
    }
}

/// The packages `apt-cache depends PKG` lists as Depends and whose names start with `prefix`.
fn depends_on(pkg: &str, prefix: &str) -> Result<Vec<String>, String> {
    let d = apt_depends(pkg)?;
    let found: Vec<String> = d
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|p| p.trim().to_string())
        .filter(|p| p.starts_with(prefix))
        .collect();
    if found.is_empty() {
        return Err(format!(
            "apt-cache depends {pkg} names no {prefix}* package:\n{d}"
        ));
    }
    Ok(found)
}

/// `pkgs` downloaded with `apt-get download` and unpacked together into `CACHE/NAME/root`, once.
/// Unpacked in a private directory and renamed into place, so parallel runs (other worktrees,
/// the same cache) never see half a tree. `fixup` runs on the unpacked tree, given its final path.
fn cached_debs(
    name: &str,
    pkgs: &[String],
    fixup: &dyn Fn(&Path, &Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    let cache = cache_dir();
    let done = cache.join(name);
    if done.join("READY").exists() {
        return Ok(done);
    }
    let tmp = cache.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| {
        format!(
            "{}: {e} (set VFIOTOOL_TEST_CACHE to a writable directory)",
            tmp.display()
        )
    })?;
    let download = || {
        run(
            Command::new("apt-get")
                .arg("download")
                .args(pkgs)
                .current_dir(&tmp),
            "downloading guest kernel packages",
        )
    };
    // Lists older than the mirror name a version it no longer has: update once and retry.
    if download().is_err() {
        run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
        download()?;
    }
    let debs: Vec<PathBuf> = fs::read_dir(&tmp)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    if debs.len() != pkgs.len() {
        return Err(format!(
            "apt-get download {pkgs:?} left {} .deb files in {}",
            debs.len(),
            tmp.display()
        ));
    }
    for deb in &debs {
        run(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(tmp.join("root")),
            "unpacking a guest kernel package",
        )?;
        let _ = fs::remove_file(deb);
    }
    fixup(&tmp.join("root"), &done.join("root"))?;
    fs::write(tmp.join("READY"), pkgs.join("\n")).map_err(|e| e.to_string())?;
    if let Err(e) = fs::rename(&tmp, &done) {
        let _ = fs::remove_dir_all(&tmp);
        if !done.join("READY").exists() {
            return Err(format!("rename {} -> {}: {e}", tmp.display(), done.display()));
        }
    }
    Ok(done)
}

/// A Debian kernel unpacked from its package: what the guest boots and loads.
pub struct GuestKernel {
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/RELEASE` of the unpacked package.
    pub moddir: PathBuf,
    /// `usr/src/linux-headers-RELEASE` of the unpacked headers (only when a module is built).
    pub headers: Option<PathBuf>,
}

/// The current kernel of `flavour` (the package its metapackage depends on), cached; with
/// `headers`, also linux-headers-RELEASE and what it depends on (the -common tree, linux-kbuild).
pub fn guest_kernel(flavour: Flavour, headers: bool) -> Result<GuestKernel, String> {
    if flavour == Flavour::Iommufd {
        return iommufd_kernel();
    }
    let pkg = depends_on(flavour.meta(), "linux-image-")?.remove(0);
    let release = pkg.trim_start_matches("linux-image-").to_string();
    let image = cached_debs(&pkg, std::slice::from_ref(&pkg), &|_, _| Ok(()))?.join("root");
    let boot = image.join("boot");
    let vmlinuz = boot.join(format!("vmlinuz-{release}"));
    if !vmlinuz.exists() {
        return Err(format!("{} is missing from {pkg}", vmlinuz.display()));
    }
    let moddir = image.join("lib/modules").join(&release);
    let headers = if headers {
        let hpkg = format!("linux-headers-{release}");
        let mut pkgs = vec![hpkg.clone()];
        pkgs.extend(depends_on(&hpkg, "linux-headers-")?);
        pkgs.extend(depends_on(&hpkg, "linux-kbuild-")?);
        // The flavour's Makefile includes the -common tree by its absolute /usr/src path: point it
        // at the unpacked one.
        let rel = release.clone();
        let dir = cached_debs(&hpkg, &pkgs, &move |tmp, fin| {
            let mk = tmp.join(format!("usr/src/linux-headers-{rel}/Makefile"));
            let text = fs::read_to_string(&mk).map_err(|e| format!("{}: {e}", mk.display()))?;
            let fixed = text.replace(
                "include /usr/src/",
                &format!("include {}/usr/src/", fin.display()),
            );
            fs::write(&mk, fixed).map_err(|e| format!("{}: {e}", mk.display()))
        })?;
        Some(dir.join("root/usr/src").join(format!("linux-headers-{release}")))
    } else {
        None
    };
    Ok(GuestKernel {
        release,
        vmlinuz,
        moddir,
        headers,
    })
}

/// The kernel tests/guest/build-iommufd-kernel.sh builds (about 7 minutes on 2 cores the first
/// time, then cached under the cache dir). Built once per test process: the machines that boot it
/// share the result.
fn iommufd_kernel() -> Result<GuestKernel, String> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let bz = BUILT
        .get_or_init(|| {
            // A kernel built elsewhere (same options) can be named instead of building one.
            if let Some(p) = std::env::var_os("VFIOTOOL_IOMMUFD_KERNEL") {
                return Ok(PathBuf::from(p));
            }
            let started = std::time::Instant::now();
            let script = repo().join("tests/guest/build-iommufd-kernel.sh");
            let out = run(
                Command::new("bash")
                    .arg(&script)
                    .env("VFIOTOOL_TEST_CACHE", cache_dir()),
                "building the iommufd guest kernel",
            )?;
            let path = out
                .lines()
                .last()
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .ok_or_else(|| format!("{} printed no bzImage path: {out}", script.display()))?;
            eprintln!(
                "guest kernel {} ready in {:.1} s",
                path.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(path)
        })
        .clone()?;
    let dir = bz.parent().ok_or("bzImage without a directory")?;
    let release = fs::read_to_string(dir.join("VERSION"))
        .map(|v| format!("6.12 iommufd ({})", v.trim()))
        .unwrap_or_else(|_| "6.12 iommufd".into());
    Ok(GuestKernel {
        release,
        vmlinuz: bz.clone(),
        // No modules: everything the scenarios need is built in.
        moddir: dir.join("no-modules"),
        headers: None,
    })
}

/// The module name (`modinfo` style: `-` and `_` are the same) of a .ko file name.
fn module_name(s: &str) -> String {
    s.trim_end_matches(".ko").replace('-', "_")
}

/// The `depends=` entry of a .ko's .modinfo section (the host has no kmod to ask).
fn module_depends(ko: &Path) -> Result<Vec<String>, String> {
    let bytes = fs::read(ko).map_err(|e| format!("{}: {e}", ko.display()))?;
    let key = b"\0depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else {
        return Err(format!("{}: no depends= in its .modinfo", ko.display()));
    };
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Ok(String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(module_name)
        .collect())
}

/// `roots` and everything they depend on, dependencies first (from each module's `depends=`;
/// the package ships no modules.dep). `vfio_virqfd` may be absent (merged into vfio in 6.2).
pub fn module_order(moddir: &Path, roots: &[&str]) -> Result<Vec<PathBuf>, String> {
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    let mut index = BTreeMap::new();
    let mut stack = vec![moddir.join("kernel")];
    while let Some(d) = stack.pop() {
        let rd = fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(n) = p
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| n.ends_with(".ko"))
            {
                index.insert(module_name(n), p.clone());
            }
        }
    }
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        order: &mut Vec<PathBuf>,
        seen: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        if seen.iter().any(|s| s == name) {
            return Ok(());
        }
        if depth > 64 {
            return Err(format!("module dependencies deeper than 64 at {name}"));
        }
        seen.push(name.to_string());
        let ko = index
            .get(name)
            .ok_or_else(|| format!("module {name} is not in the guest kernel package"))?;
        for dep in module_depends(ko)? {
            visit(&dep, index, order, seen, depth + 1)?;
        }
        order.push(ko.clone());
        Ok(())
    }
    let mut order = Vec::new();
    let mut seen = Vec::new();
    for r in roots {
        let name = module_name(r);
        if name == "vfio_virqfd" && !index.contains_key(&name) {
            continue;
        }
        visit(&name, &index, &mut order, &mut seen, 0)?;
    }
    Ok(order)
}

/// tests/guest/module built against the kernel's headers with gcc-12 (the compiler Debian built
/// the 6.1 kernel with), in target/guest/module.
pub fn build_slowremove(headers: &Path) -> Result<PathBuf, String> {
    let out = work_dir().join("module");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let src = repo().join("tests/guest/module");
    for f in ["slowremove.c", "Kbuild"] {
        copy(&src.join(f), &out.join(f))?;
    }
    run(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(headers)
            .arg(format!("M={}", out.display()))
            .arg("CC=gcc-12")
            .arg("modules"),
        "building tests/guest/module/slowremove.ko",
    )?;
    let ko = out.join("slowremove.ko");
    if !ko.exists() {
        return Err(format!("make left no {}", ko.display()));
    }
    Ok(ko)
}

/// QEMU 10 from bookworm-backports, the QEMU here that has the iommufd backend
/// (`-object iommufd`): downloaded with apt-get through a private source list (the host's apt
/// configuration and its QEMU 7.2 stay as they are) and unpacked into the cache once. Returns the
/// unpacked root (its `usr/bin/qemu-system-x86_64` runs with the host's libraries).
pub fn backports_qemu() -> Result<PathBuf, String> {
    crate::backports::unpack(
        &cache_dir(),
        "bpo-qemu",
        "qemu-system-x86",
        "usr/bin/qemu-system-x86_64",
    )
}
