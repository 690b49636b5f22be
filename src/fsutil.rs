//! File-system helpers with the project's safety rules: writes are atomic (a temp file in the
//! same directory, fsync, rename) and never modify an input in place.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ExitKind, Result};

/// Inputs larger than this are not option ROMs (the PCI ROM BAR is at most 16 MiB).
pub const MAX_INPUT: u64 = 256 << 20;

/// Read a whole input file, or standard input for `-`, refusing directories and oversized input.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut data = Vec::new();
        io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::io(Path::new("<stdin>"), "read", &e))?;
        if data.len() as u64 > MAX_INPUT {
            return Err(too_large(Path::new("<stdin>")));
        }
        return Ok(data);
    }
    let meta = fs::metadata(path).map_err(|e| Error::io(path, "open", &e))?;
    if meta.is_dir() {
        return Err(Error::new(
            ExitKind::BadInput,
            format!("{}: is a directory, not a ROM file", path.display()),
        ));
    }
    if meta.len() > MAX_INPUT {
        return Err(too_large(path));
    }
    // Sized up front: growing by doubling copied the ROM several times into fresh pages.
    let mut data = Vec::with_capacity(meta.len() as usize + 1);
    fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut data))
        .map_err(|e| Error::io(path, "read", &e))?;
    if data.len() as u64 > MAX_INPUT {
        return Err(too_large(path));
    }
    Ok(data)
}

fn too_large(path: &Path) -> Error {
    Error::bad_input(format!(
        "{}: larger than {} MiB; a PCI option ROM is at most 16 MiB",
        path.display(),
        MAX_INPUT >> 20
    ))
}

/// Write `data` to `path` atomically: a temp file in the same directory, fsync, then rename.
/// Without `overwrite`, an existing `path` is left alone and reported. On any failure the temp
/// file is removed, so no partial output is ever visible under `path`.
pub fn atomic_write(path: &Path, data: &[u8], overwrite: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".vfiotool-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, "create temporary file", &e))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), "write", &e))?;
    if overwrite {
        tmp.persist(path)
            .map_err(|e| Error::io(path, "rename into place", &e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                Error::usage(format!("{}: exists; pass --force to replace it", path.display()))
            } else {
                Error::io(path, "rename into place", &e.error)
            }
        })?;
    }
    // The rename is durable once the directory entry is.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// True when `a` and `b` name the same existing file (also through links or `./` spellings).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_refuses_existing_without_overwrite_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.rom");
        atomic_write(&p, b"one", false).unwrap();
        let e = atomic_write(&p, b"two", false).unwrap_err();
        assert_eq!(e.kind, ExitKind::Usage);
        assert_eq!(fs::read(&p).unwrap(), b"one");
        atomic_write(&p, b"three", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.rom")]);
    }

    #[test]
    fn read_input_refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_input(dir.path()).unwrap_err();
        assert_eq!(e.kind, ExitKind::BadInput);
        assert!(e.message.contains("is a directory"));
    }
}
