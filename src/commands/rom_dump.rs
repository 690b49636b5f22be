//! `vfiotool rom dump`: read a device's option ROM (sysfs or VFIO, through `vfio::romdump`),
//! judge it for that card and write it atomically. Lives beside the other rom commands
//! (`commands/rom.rs`); the host side (ROM BAR enable/disable, the VFIO attach) is in `vfio/`.

use std::io::Write;

use serde::Serialize;

use crate::cli::{DumpVia, RomDumpArgs};
use crate::error::{Error, ExitKind, Result};
use crate::fsutil;
use crate::output::Output;
use crate::pci::address::PciAddress;
use crate::vfio::host::Host;
use crate::vfio::ioctl::Kernel;
use crate::vfio::romdump::{self, Via};
use crate::vfio::signals;

/// One `vfiotool.rom-dump/1` document.
#[derive(Serialize)]
struct DumpDoc<'a> {
    schema: &'static str,
    device: PciAddress,
    via: Via,
    bar_size: u64,
    bytes: usize,
    trimmed: usize,
    file: Option<String>,
    notes: &'a [String],
    analysis: &'a crate::rom::RomAnalysis,
}

pub fn rom_dump<W: Write>(args: &RomDumpArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let addr = PciAddress::parse(&args.device).map_err(|e| Error::usage(e.to_string()))?;
    // SIGINT/SIGTERM must not end the process between "write 1" and "write 0" to `rom`.
    let _interrupted = signals::watch_or_refuse("rom dump", false)?;
    let host = Host::system().with_progress(out.json);
    if !host.exists(&addr)? {
        return Err(Error::system(format!(
            "no PCI device {addr} (nothing under /sys/bus/pci/devices); check the address with `lspci -D`"
        )));
    }
    let (via, result) = match args.via {
        DumpVia::Sysfs => (Via::Sysfs, romdump::via_sysfs(&host, &addr)),
        DumpVia::Vfio => (
            Via::Vfio,
            romdump::via_vfio(&host, &Kernel, &addr, super::bind::backend_choice(args.backend)),
        ),
    };
    let mut dump = result?;
    // The device is known: judge the ROM for this card (SeaBIOS's id match, GOP by its class).
    if let Ok(d) = crate::pci::device::Device::read(host.sysfs(), &addr) {
        if let Ok(a) = crate::rom::analyze_for(&dump.bytes, Some(&super::rom::card_of(&d))) {
            dump.analysis = a;
        }
    }
    if let Some(path) = &args.output {
        fsutil::atomic_write(path, &dump.bytes, args.force)?;
    }
    let file = args.output.as_ref().map(|p| p.display().to_string());
    if out.json {
        out.json_doc(&DumpDoc {
            schema: "vfiotool.rom-dump/1",
            device: addr,
            via,
            bar_size: dump.bar_size,
            bytes: dump.bytes.len(),
            trimmed: dump.trimmed,
            file,
            notes: &dump.notes,
            analysis: &dump.analysis,
        })
        .map_err(Error::output)?;
    } else {
        let w = &mut out.out;
        let mut write = || -> std::io::Result<()> {
            writeln!(
                w,
                "{addr}: {} bytes of ROM via {} (BAR {:#x}), {} image(s), firmware: {}",
                dump.bytes.len(),
                if via == Via::Sysfs { "sysfs" } else { "vfio" },
                dump.bar_size,
                dump.analysis.images.len(),
                dump.analysis.verdict.firmware
            )?;
            for n in &dump.notes {
                writeln!(w, "  note: {n}")?;
            }
            for l in &dump.analysis.verdict.lines {
                writeln!(w, "  {l}")?;
            }
            match &file {
                Some(f) => writeln!(w, "written to {f}"),
                None => writeln!(w, "not written (no -o FILE)"),
            }
        };
        write().map_err(Error::output)?;
    }
    Ok(ExitKind::Success)
}
