//! A package from Debian's bookworm-backports, unpacked once into the test cache (outside the
//! repo): apt-get with a private source list, lists and archive cache, so the host's apt setup and
//! its installed packages (QEMU 7.2, linux-libc-dev 6.1) stay as they are. Used by the guest
//! harness (QEMU 10, which has the iommufd backend) and by tests/uapi_layout.rs (the 6.12 uapi
//! headers). Included with `#[path]` by both.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `cache/NAME/root`: `package` unpacked there, downloaded only when `root/marker` is missing.
/// The tree is built beside it and renamed into place, so a half-done download is never used.
pub fn unpack(cache: &Path, name: &str, package: &str, marker: &str) -> Result<PathBuf, String> {
    let dir = cache.join(name);
    let root = dir.join("root");
    if root.join(marker).is_file() {
        return Ok(root);
    }
    let tmp = cache.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    for d in ["lists/partial", "cache/archives/partial", "debs"] {
        fs::create_dir_all(tmp.join(d)).map_err(|e| format!("{}: {e}", tmp.join(d).display()))?;
    }
    let list = tmp.join("bpo.list");
    fs::write(
        &list,
        "deb http://deb.debian.org/debian bookworm-backports main\n",
    )
    .map_err(|e| format!("{}: {e}", list.display()))?;
    let opts = [
        format!("-oDir::Etc::SourceList={}", list.display()),
        "-oDir::Etc::SourceParts=/dev/null".to_string(),
        format!("-oDir::State::Lists={}", tmp.join("lists").display()),
        format!("-oDir::Cache={}", tmp.join("cache").display()),
    ];
    let result = (|| {
        run(
            Command::new("apt-get").args(&opts).args(["update", "-qq"]),
            "apt-get update (bookworm-backports)",
        )?;
        run(
            Command::new("apt-get")
                .args(&opts)
                .args(["download", "-qq", package])
                .current_dir(tmp.join("debs")),
            &format!("apt-get download {package} (bookworm-backports)"),
        )?;
        for e in fs::read_dir(tmp.join("debs")).map_err(|e| e.to_string())? {
            let deb = e.map_err(|e| e.to_string())?.path();
            run(
                Command::new("dpkg-deb").arg("-x").arg(&deb).arg(tmp.join("root")),
                &format!("dpkg-deb -x {}", deb.display()),
            )?;
        }
        if !tmp.join("root").join(marker).is_file() {
            return Err(format!("bookworm-backports' {package} has no {marker}"));
        }
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        fs::rename(tmp.join("root"), &root).map_err(|e| format!("{}: {e}", root.display()))
    })();
    let _ = fs::remove_dir_all(&tmp);
    result.map(|()| root)
}
