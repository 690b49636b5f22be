//! `vfiotool rom parse` and `vfiotool rom patch`.

use std::io::Write;

use crate::cli::{RomParseArgs, RomPatchArgs};
use crate::error::{Error, ExitKind, Result};
use crate::output::Output;

pub fn parse<W: Write>(_args: &RomParseArgs, _out: &mut Output<W>) -> Result<ExitKind> {
    Err(Error::usage("rom parse: being written"))
}

pub fn patch<W: Write>(_args: &RomPatchArgs, _out: &mut Output<W>) -> Result<ExitKind> {
    Err(Error::usage("rom patch: being written"))
}
