//! vfiotool's own definitions of the iommufd / VFIO device cdev structs and request numbers
//! (src/vfio/ioctl.rs) against the kernel's uapi headers: a C program compiled with gcc against
//! `linux/iommufd.h` and `linux/vfio.h` prints `sizeof`, `offsetof` and the request macros, and
//! they must equal what the Rust side has.
//!
//! The host's linux-libc-dev (6.1) has no linux/iommufd.h, so the headers come from
//! bookworm-backports' linux-libc-dev (6.12 series), downloaded with apt-get through a private
//! source list and unpacked once into `$VFIOTOOL_TEST_CACHE` (default /var/cache/vfiotool-tests);
//! the host's apt configuration is left as it is. Without the headers the test fails under CI=true
//! and says SKIPPED elsewhere.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vfiotool::vfio::ioctl::{iommufd_layouts, iommufd_requests};

#[path = "common/backports.rs"]
mod backports;

fn cache_dir() -> PathBuf {
    std::env::var_os("VFIOTOOL_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/vfiotool-tests"))
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `usr/include` of bookworm-backports' linux-libc-dev, unpacked into the cache once.
fn uapi_headers() -> Result<PathBuf, String> {
    backports::unpack(
        &cache_dir(),
        "bpo-linux-libc-dev",
        "linux-libc-dev",
        "usr/include/linux/iommufd.h",
    )
    .map(|root| root.join("usr/include"))
}

/// The C program: one line per struct (`name size field=offset ...`) and per request.
fn c_program() -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/iommufd.h>\n#include <linux/vfio.h>\nint main(void) {\n",
    );
    for (name, _, fields) in iommufd_layouts() {
        c.push_str(&format!("  printf(\"{name} %zu\", sizeof(struct {name}));\n"));
        for (f, _) in fields {
            c.push_str(&format!(
                "  printf(\" {f}=%zu\", offsetof(struct {name}, {f}));\n"
            ));
        }
        c.push_str("  printf(\"\\n\");\n");
    }
    for (name, _) in iommufd_requests() {
        c.push_str(&format!("  printf(\"{name} %lu\\n\", (unsigned long){name});\n"));
    }
    c.push_str("  return 0;\n}\n");
    c
}

/// What the Rust side says, in the C program's output format.
fn rust_lines() -> Vec<String> {
    let mut v = Vec::new();
    for (name, size, fields) in iommufd_layouts() {
        let mut l = format!("{name} {size}");
        for (f, off) in fields {
            l.push_str(&format!(" {f}={off}"));
        }
        v.push(l);
    }
    for (name, req) in iommufd_requests() {
        v.push(format!("{name} {req}"));
    }
    v
}

fn compile_and_run(include: &Path) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let src = dir.path().join("layout.c");
    fs::write(&src, c_program()).map_err(|e| e.to_string())?;
    let exe = dir.path().join("layout");
    run(Command::new("gcc")
        .arg("-I")
        .arg(include)
        .arg("-I")
        .arg(include.join("x86_64-linux-gnu"))
        .arg("-o")
        .arg(&exe)
        .arg(&src))?;
    Ok(run(&mut Command::new(&exe))?
        .lines()
        .map(str::to_string)
        .collect())
}

#[test]
fn iommufd_structs_and_requests_match_the_kernel_uapi_headers() {
    let include = match uapi_headers() {
        Ok(i) => i,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: no 6.12 uapi headers ({e}); the layouts were not checked against them");
            return;
        }
        Err(e) => panic!("no 6.12 uapi headers under CI: {e}"),
    };
    let c = compile_and_run(&include).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c,
        rust_lines(),
        "gcc against {} vs src/vfio/ioctl.rs",
        include.display()
    );
    // Sanity: the program really printed every struct and request.
    assert_eq!(c.len(), iommufd_layouts().len() + iommufd_requests().len());
}
