//! `vfiotool rom extract` and `vfiotool rom build`: the file side of `rom::extract` and
//! `rom::build`. Extract writes its directory atomically (a temporary sibling directory renamed
//! into place), build writes its ROM atomically, and neither writes anything when a check fails.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{RomBuildArgs, RomExtractArgs};
use crate::error::{Error, ExitKind, Result};
use crate::fsutil;
use crate::output::Output;
use crate::rom::build::{self, BuildRequest, Built, Part, PartKind};
use crate::rom::extract::{self, Manifest, MANIFEST};

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

#[derive(Serialize)]
struct ExtractDoc<'a> {
    output: String,
    #[serde(flatten)]
    manifest: &'a Manifest,
}

pub fn extract<W: Write>(args: &RomExtractArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let name = display_name(&args.input);
    let dir = &args.output;
    if let Ok(mut entries) = fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(Error::usage(format!(
                "{}: exists and is not empty; rom extract writes a new directory",
                dir.display()
            )));
        }
    } else if dir.exists() {
        return Err(Error::usage(format!(
            "{}: exists and is not a directory",
            dir.display()
        )));
    }
    let bytes = fsutil::read_input(&args.input)?;
    let (manifest, files, _) = extract::extract(&bytes, &name)
        .map_err(|e| Error::bad_input(format!("{name}: {e}; nothing written")))?;
    let mut doc =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::system(format!("manifest: {e}")))?;
    doc.push(b'\n');
    write_dir(
        dir,
        files
            .iter()
            .map(|f| (f.name.as_str(), f.bytes.as_slice()))
            .chain([(MANIFEST, doc.as_slice())]),
    )?;
    if out.json {
        out.json_doc(&ExtractDoc {
            output: dir.display().to_string(),
            manifest: &manifest,
        })
        .map_err(Error::output)?;
        return Ok(ExitKind::Success);
    }
    let w = &mut out.out;
    let io = Error::output;
    writeln!(
        w,
        "{name}: {} image(s) -> {}/",
        manifest.images.len(),
        dir.display()
    )
    .map_err(io)?;
    if let Some(p) = &manifest.prefix {
        writeln!(w, "  {:<36} {} bytes before the first image", p.file, p.bytes).map_err(io)?;
    }
    for i in &manifest.images {
        let mut flags = Vec::new();
        if !i.reachable {
            flags.push("unreachable".to_string());
        }
        if i.truncated {
            flags.push("truncated".to_string());
        }
        writeln!(
            w,
            "  {:<36} {:<9} {:04x}:{:04x} class {:06x} {:#x} bytes{}{}",
            i.file,
            i.code_type_name,
            i.vendor_id,
            i.device_id,
            i.class_code,
            i.size,
            if i.last { ", last" } else { "" },
            flags.iter().map(|f| format!(", {f}")).collect::<String>()
        )
        .map_err(io)?;
        if let Some(e) = &i.efi {
            match (&e.driver_file, &e.driver_error) {
                (Some(f), _) => writeln!(
                    w,
                    "  {:<36} {} {} driver, {} bytes",
                    f,
                    e.machine_name,
                    e.subsystem_name,
                    e.driver_size.unwrap_or(0)
                )
                .map_err(io)?,
                (None, Some(why)) => {
                    writeln!(w, "  (no driver file for image {}: {why})", i.index).map_err(io)?
                }
                (None, None) => {}
            }
        }
    }
    writeln!(w, "  {MANIFEST}").map_err(io)?;
    Ok(ExitKind::Success)
}

/// Write the files into a new temporary directory beside `dir`, then rename it to `dir`.
fn write_dir<'a>(dir: &Path, files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".vfiotool-extract-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, "create temporary directory", &e))?;
    for (name, bytes) in files {
        let path = tmp.path().join(name);
        fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
            .map_err(|e| Error::io(&path, "write", &e))?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(tmp.path(), "chmod", &e))?;
    }
    // rename(2) replaces an empty directory, and the temporary one is removed on any failure.
    let kept = tmp.keep();
    if let Err(e) = fs::rename(&kept, dir) {
        let _ = fs::remove_dir_all(&kept);
        return Err(Error::io(dir, "rename into place", &e));
    }
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[derive(Serialize)]
struct BuildDoc<'a> {
    schema: &'static str,
    output: String,
    written: bool,
    #[serde(flatten)]
    built: &'a Built,
    verdict: &'a crate::rom::Verdict,
}

pub fn build<W: Write>(args: &RomBuildArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let output_name = args.output.display().to_string();
    if args.output == Path::new("-") {
        return Err(Error::usage(
            "rom build: -o - is not supported; name an output file",
        ));
    }
    let mut ordered: Vec<(usize, PartKind, &PathBuf)> = Vec::new();
    ordered.extend(args.x86.iter().map(|p| (p.seq, PartKind::X86, &p.path)));
    ordered.extend(args.image.iter().map(|p| (p.seq, PartKind::Image, &p.path)));
    ordered.extend(args.efi.iter().map(|p| (p.seq, PartKind::Efi, &p.path)));
    ordered.sort_by_key(|(seq, _, _)| *seq);
    let inputs = args.base.iter().chain(ordered.iter().map(|(_, _, p)| *p));
    for input in inputs {
        if *input == args.output || fsutil::same_file(input, &args.output) {
            return Err(Error::usage(format!(
                "{output_name}: is an input file; rom build never writes in place, name another output"
            )));
        }
    }
    let base = match &args.base {
        Some(p) => Some((display_name(p), fsutil::read_input(p)?)),
        None => None,
    };
    let mut parts = Vec::new();
    for (_, kind, path) in &ordered {
        parts.push(Part::new(*kind, display_name(path), fsutil::read_input(path)?));
    }
    let req = BuildRequest {
        base,
        parts,
        vendor: args.vendor,
        device: args.device,
        class: args.class,
        compress: args.compress,
        expect: args.expect.clone(),
    };
    let built = build::build(&req).map_err(|e| {
        let kind = match e {
            build::BuildError::Empty | build::BuildError::BadExpect(_) | build::BuildError::NoIds { .. } => {
                ExitKind::Usage
            }
            _ => ExitKind::BadInput,
        };
        Error::new(kind, format!("rom build: {e}; nothing written"))
    })?;
    if !args.dry_run {
        fsutil::atomic_write(&args.output, &built.output, args.force)?;
    }
    if out.json {
        out.json_doc(&BuildDoc {
            schema: build::SCHEMA,
            output: output_name,
            written: !args.dry_run,
            built: &built,
            verdict: &built.analysis.verdict,
        })
        .map_err(Error::output)?;
        return Ok(ExitKind::Success);
    }
    let w = &mut out.out;
    let io = Error::output;
    for i in &built.images {
        let mut extra = Vec::new();
        if let (Some(m), Some(s)) = (i.machine, i.subsystem) {
            extra.push(format!(
                "{} {}",
                crate::rom::efi::machine_name(m),
                crate::rom::efi::subsystem_name(s)
            ));
        }
        if let (Some(d), Some(p)) = (i.driver_size, i.payload_size) {
            extra.push(if i.compressed == Some(true) {
                format!("driver {d} bytes compressed to {p}")
            } else {
                format!("driver {d} bytes")
            });
        }
        if i.checksum_fixed {
            extra.push("checksum set".into());
        }
        if i.last {
            extra.push("last".into());
        }
        writeln!(
            w,
            "  #{} {:#07x} {:<5} {:04x}:{:04x} class {:06x} len {:#07x} from {}{}",
            i.index,
            i.offset,
            crate::rom::pcir::code_type_name(i.code_type),
            i.vendor_id,
            i.device_id,
            i.class_code,
            i.length,
            i.from,
            extra.iter().map(|e| format!(", {e}")).collect::<String>()
        )
        .map_err(io)?;
    }
    let verb = if args.dry_run { "would write" } else { "wrote" };
    writeln!(
        w,
        "{verb} {output_name}: {} bytes, {} image(s), firmware {} as expected",
        built.size,
        built.images.len(),
        built.analysis.verdict.firmware
    )
    .map_err(io)?;
    Ok(ExitKind::Success)
}
