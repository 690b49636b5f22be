//! One function per subcommand: turn parsed arguments into a report, print it, and say which
//! exit kind the run ended with. Nothing here parses bytes or touches sysfs directly; that is
//! the job of `rom`, `pci`, `vfio` and `host`.

use std::io::Write;

use crate::cli::{Command, RomCommand};
use crate::error::{ExitKind, Result};
use crate::output::Output;

pub mod bind;
pub mod config;
pub mod docs;
pub mod explain;
pub mod host;
pub mod persist;
pub mod rom;
pub mod rom_build;
pub mod rom_dump;

/// Run one parsed command.
pub fn run<W: Write>(command: Command, out: &mut Output<W>) -> Result<ExitKind> {
    match command {
        Command::Rom(RomCommand::Parse(args)) => rom::parse(&args, out),
        Command::Rom(RomCommand::Patch(args)) => rom::patch(&args, out),
        Command::Rom(RomCommand::Dump(args)) => rom_dump::rom_dump(&args, out),
        Command::Rom(RomCommand::Extract(args)) => rom_build::extract(&args, out),
        Command::Rom(RomCommand::Build(args)) => rom_build::build(&args, out),
        Command::Bind(args) => bind::bind(&args, out),
        Command::Unbind(args) => bind::unbind(&args, out),
        Command::Config(args) => config::config(&args, out),
        Command::Persist(args) => persist::persist(&args, out),
        Command::Completions { shell } => docs::completions(shell, out),
        Command::Manpage { out: dir } => docs::manpage(dir.as_deref(), out),
        Command::Check(args) => host::check(&args, out),
        Command::List(args) => host::list(&args, out),
        Command::Groups(args) => host::groups(&args, out),
        Command::Capture(args) => host::capture(&args, out),
        Command::Explain(args) => explain::explain(&args, out),
    }
}
