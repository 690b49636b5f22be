//! The command-line definition (clap derive). It lives in the library so that the man page and
//! shell completions can be generated from the same definition the binary parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  vfiotool check                      is this host ready for passthrough?
  vfiotool groups                     IOMMU groups and whether each is isolated
  vfiotool rom parse gpu.rom          does this vBIOS carry a UEFI GOP driver?
  vfiotool rom patch nv.rom -o fixed.rom   strip the NVIDIA dump header
  vfiotool bind 01:00                 rebind every function of 01:00 to vfio-pci and prove it

Exit codes: 0 ok, 1 verdict not met, 2 usage, 3 bad input data, 4 system error,
            5 failed and rolled back, 6 rollback incomplete (see README.md)";

#[derive(Debug, Parser)]
#[command(name = "vfiotool", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print one JSON document per report instead of human output (schemas in docs/json.md).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse, dump and patch PCI option ROMs (vBIOS).
    #[command(subcommand)]
    Rom(RomCommand),
}

#[derive(Debug, Subcommand)]
pub enum RomCommand {
    /// Walk a ROM's image chain and tell whether a UEFI GOP driver is reachable.
    #[command(after_help = "Examples:
  vfiotool rom parse gpu.rom
  vfiotool rom parse --require-gop gpu.rom && echo use OVMF
  cat gpu.rom | vfiotool rom parse --json -")]
    Parse(RomParseArgs),
    /// Strip what comes before the first valid image (NVIDIA dump headers); never in place.
    #[command(after_help = "Examples:
  vfiotool rom patch nvflash-dump.rom -o gpu.rom
  vfiotool rom patch --fix-checksum broken.rom -o fixed.rom")]
    Patch(RomPatchArgs),
}

#[derive(Debug, Args)]
pub struct RomParseArgs {
    /// ROM files to analyse; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Exit with code 1 unless every file has a reachable UEFI GOP driver.
    #[arg(long)]
    pub require_gop: bool,
}

#[derive(Debug, Args)]
pub struct RomPatchArgs {
    /// The ROM to read (never modified).
    #[arg(value_name = "IN")]
    pub input: PathBuf,

    /// Where to write the patched ROM (atomically; refused if it is IN).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Replace an existing OUT.
    #[arg(long)]
    pub force: bool,

    /// Correct the checksum byte of x86 images whose bytes do not sum to zero.
    #[arg(long)]
    pub fix_checksum: bool,

    /// Show what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}
