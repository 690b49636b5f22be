//! One function per subcommand: turn parsed arguments into a report, print it, and say which
//! exit kind the run ended with. Nothing here parses bytes or touches sysfs directly; that is
//! the job of `rom`, `pci`, `vfio` and `host`.

use std::io::Write;

use crate::cli::{Command, RomCommand};
use crate::error::{ExitKind, Result};
use crate::output::Output;

pub mod rom;

/// Run one parsed command.
pub fn run<W: Write>(command: Command, out: &mut Output<W>) -> Result<ExitKind> {
    match command {
        Command::Rom(RomCommand::Parse(args)) => rom::parse(&args, out),
        Command::Rom(RomCommand::Patch(args)) => rom::patch(&args, out),
    }
}
