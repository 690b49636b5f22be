//! `vfiotool rom parse` and `vfiotool rom patch`.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::{RomParseArgs, RomPatchArgs};
use crate::error::{Error, ExitKind, Result};
use crate::fsutil;
use crate::output::{ErrorDoc, Output, Style};
use crate::pci::address::PciAddress;
use crate::pci::device::Device;
use crate::rom::patch::{self, PatchError};
use crate::rom::{self, Card, Image, RomAnalysis};

/// The ids and class of a PCI function, as the ROM model compares them.
pub fn card_of(d: &Device) -> Card {
    Card {
        vendor_id: d.vendor_id,
        device_id: d.device_id,
        subsystem_vendor_id: d.subsystem_vendor_id,
        subsystem_device_id: d.subsystem_device_id,
        class_code: d.class_code,
    }
}

/// The card named by `--device`, read from sysfs (or the tree given with --root).
fn card_from_args(args: &RomParseArgs) -> Result<Option<Card>> {
    let Some(spec) = &args.device else { return Ok(None) };
    let addr = PciAddress::parse(spec).map_err(|e| Error::usage(e.to_string()))?;
    let root = crate::host::HostRoot::from_args(&args.root).sysfs;
    let device = Device::read(&root, &addr)?;
    Ok(Some(card_of(&device)))
}

/// One `vfiotool.rom/1` document.
#[derive(Serialize)]
struct RomDoc<'a> {
    schema: &'static str,
    file: String,
    #[serde(flatten)]
    analysis: &'a RomAnalysis,
}

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

pub fn parse<W: Write>(args: &RomParseArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let mut worst = ExitKind::Success;
    let single = args.files.len() == 1;
    let card = card_from_args(args)?;
    for path in &args.files {
        let name = display_name(path);
        let outcome = fsutil::read_input(path).and_then(|bytes| {
            rom::analyze_for(&bytes, card.as_ref()).map_err(|e| Error::bad_input(format!("{name}: {e}")))
        });
        let analysis = match outcome {
            Ok(a) => a,
            Err(err) if single => return Err(err),
            Err(err) => {
                if out.json {
                    // A per-file error: the run goes on with the next file.
                    out.json_doc(&ErrorDoc::new(&err.message, err.kind, Some(name)))
                        .map_err(Error::output)?;
                } else {
                    let _ = writeln!(std::io::stderr(), "vfiotool: {}", err.message);
                }
                worst = worse(worst, err.kind);
                continue;
            }
        };
        if out.json {
            out.json_doc(&RomDoc {
                schema: rom::SCHEMA,
                file: name,
                analysis: &analysis,
            })
            .map_err(Error::output)?;
        } else {
            print_human(out, &name, &analysis).map_err(Error::output)?;
        }
        if args.require_gop && !analysis.verdict.uefi_gop {
            worst = worse(worst, ExitKind::VerdictNotMet);
        }
    }
    Ok(worst)
}

/// The exit kind that matters more: errors over verdicts over success.
fn worse(a: ExitKind, b: ExitKind) -> ExitKind {
    let rank = |k: ExitKind| match k {
        ExitKind::Success => 0,
        ExitKind::VerdictNotMet => 1,
        _ => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn print_human<W: Write>(out: &mut Output<W>, name: &str, a: &RomAnalysis) -> std::io::Result<()> {
    let prefix = match &a.prefix {
        Some(p) => format!(", {} before the first image", p.description),
        None => String::new(),
    };
    writeln!(
        out.out,
        "{name}: {} bytes, {} image(s){prefix}",
        a.size,
        a.images.len()
    )?;
    for image in &a.images {
        print_image(out, image)?;
    }
    for note in &a.notes {
        let line = out.paint(Style::Warn, &format!("  note: {note}"));
        writeln!(out.out, "{line}")?;
    }
    if let Some(id) = identity_line(a) {
        writeln!(out.out, "  vbios: {id}")?;
    }
    if let Some(m) = &a.device_match {
        let style = if m.matches { Style::Ok } else { Style::Fail };
        let card = format!(
            "card {}{}",
            m.card.ids(),
            match (m.card.subsystem_vendor_id, m.card.subsystem_device_id) {
                (Some(v), Some(d)) => format!(" (subsystem {v:04x}:{d:04x})"),
                _ => String::new(),
            }
        );
        let line = out.paint(style, &m.line);
        writeln!(out.out, "  device: {card}: {line}")?;
    }
    for (i, line) in a.verdict.lines.iter().enumerate() {
        let style = if i == 0 && a.verdict.uefi_gop {
            Style::Ok
        } else {
            Style::Warn
        };
        let text = out.paint(style, line);
        writeln!(out.out, "  verdict: {text}")?;
    }
    Ok(())
}

/// "nvidia 94.04.6b.00.16, built 07/14/21" and the like.
fn identity_line(a: &RomAnalysis) -> Option<String> {
    let id = &a.identity;
    let vendor = id.vendor?;
    let mut parts = vec![vendor.to_string()];
    parts.extend(id.version.iter().map(|v| format!("version {v}")));
    parts.extend(id.part_number.iter().map(|p| format!("part {p}")));
    parts.extend(id.build_date.iter().map(|d| format!("built {d}")));
    parts.extend(id.name.iter().map(|n| format!("\"{n}\"")));
    parts.extend(id.notes.iter().map(|n| format!("note: {n}")));
    Some(parts.join(", "))
}

fn print_image<W: Write>(out: &mut Output<W>, i: &Image) -> std::io::Result<()> {
    let mut flags = Vec::new();
    flags.push(if i.checksum_ok {
        "checksum ok".to_string()
    } else {
        format!("checksum off by {:#04x}", i.checksum)
    });
    if i.last {
        flags.push("last".into());
    }
    if i.truncated {
        flags.push(out.paint(Style::Fail, "truncated"));
    }
    if !i.reachable {
        flags.push(out.paint(Style::Warn, "unreachable (after the last-image flag)"));
    }
    writeln!(
        out.out,
        "  #{} {:#07x} {:<9} {:04x}:{:04x} class {:06x} len {:#07x} {}",
        i.index,
        i.offset,
        i.code_type_name,
        i.vendor_id,
        i.device_id,
        i.class_code,
        i.length,
        flags.join(", ")
    )?;
    if let Some(e) = &i.efi {
        let mut parts = vec![
            e.machine_name.to_string(),
            e.subsystem_name.to_string(),
            if e.compressed {
                "compressed"
            } else {
                "uncompressed"
            }
            .to_string(),
        ];
        if let Some(size) = e.driver_size {
            parts.push(format!("driver {size} bytes"));
        }
        if let Some(pe) = &e.pe {
            parts.push(pe.format.to_string());
        }
        let kind = if e.gop {
            out.paint(Style::Ok, "GOP driver")
        } else if e.driver_size.is_none() {
            out.paint(Style::Fail, "GOP unknown (driver unreadable)")
        } else if e.gop_guid {
            "names GOP but does not provide it".into()
        } else if e.uga_guid {
            "UGA only, no GOP".into()
        } else {
            "no GOP".into()
        };
        parts.push(kind);
        if let Some(v) = &e.gop_version {
            parts.push(format!("version {v}"));
        }
        writeln!(out.out, "      efi: {}", parts.join(", "))?;
    }
    if let Some(n) = &i.npde {
        if let Some(v) = n.version.filter(|v| *v != 0) {
            writeln!(out.out, "      npde: rev {:#x}, version 0x{v:X}", n.revision)?;
        }
    }
    for p in &i.problems {
        let line = out.paint(Style::Fail, &format!("      problem: {p}"));
        writeln!(out.out, "{line}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct PatchDoc<'a> {
    schema: &'static str,
    input: String,
    output: String,
    written: bool,
    #[serde(flatten)]
    patched: &'a patch::Patched,
    verdict: &'a rom::Verdict,
}

pub fn patch<W: Write>(args: &RomPatchArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let input_name = display_name(&args.input);
    let output_name = args.output.display().to_string();
    if args.output == Path::new("-") {
        return Err(Error::usage(
            "rom patch: -o - is not supported; name an output file",
        ));
    }
    if args.output == args.input || fsutil::same_file(&args.input, &args.output) {
        return Err(Error::usage(format!(
            "{output_name}: is the input file; rom patch never writes in place, name another output"
        )));
    }
    let bytes = fsutil::read_input(&args.input)?;
    let patched = patch::patch(&bytes, args.fix_checksum).map_err(|e| match e {
        PatchError::Rom(r) => Error::bad_input(format!("{input_name}: {r}; nothing written")),
        PatchError::InvalidResult(why) => Error::bad_input(format!("{input_name}: {why}; nothing written")),
    })?;
    if !args.dry_run {
        fsutil::atomic_write(&args.output, &patched.output, args.force)?;
    }
    if out.json {
        out.json_doc(&PatchDoc {
            schema: "vfiotool.patch/1",
            input: input_name,
            output: output_name,
            written: !args.dry_run,
            patched: &patched,
            verdict: &patched.result.verdict,
        })
        .map_err(Error::output)?;
        return Ok(ExitKind::Success);
    }
    let w = &mut out.out;
    let io = Error::output;
    match &patched.removed {
        Some(p) => writeln!(
            w,
            "removed {} bytes before the first image: {}",
            p.bytes, p.description
        )
        .map_err(io)?,
        None => writeln!(w, "no header before the first image: {output_name} is a copy").map_err(io)?,
    }
    for fix in &patched.checksum_fixes {
        writeln!(
            w,
            "fixed checksum of image {}: byte {:#x} {:#04x} -> {:#04x}",
            fix.image, fix.offset, fix.old, fix.new
        )
        .map_err(io)?;
    }
    let verb = if args.dry_run { "would write" } else { "wrote" };
    writeln!(
        w,
        "{verb} {output_name}: {} bytes, {} image(s), firmware {}",
        patched.output.len(),
        patched.result.images.len(),
        patched.result.verdict.firmware
    )
    .map_err(io)?;
    Ok(ExitKind::Success)
}
