//! `vfiotool completions SHELL` and `vfiotool manpage [--out DIR]`: shell completions and man
//! pages generated from the clap definition in `cli.rs`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, ExitKind, Result};
use crate::fsutil;
use crate::output::Output;

pub fn completions<W: Write>(shell: clap_complete::Shell, out: &mut Output<W>) -> Result<ExitKind> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "vfiotool", &mut out.out);
    out.out.flush().map_err(Error::output)?;
    Ok(ExitKind::Success)
}

pub fn manpage<W: Write>(dir: Option<&Path>, out: &mut Output<W>) -> Result<ExitKind> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd)
            .render(&mut out.out)
            .map_err(Error::output)?;
        return Ok(ExitKind::Success);
    };
    let mut pages = Vec::new();
    collect_pages(cmd, "vfiotool", &mut pages);
    for (name, cmd) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut roff)
            .map_err(Error::output)?;
        let path = dir.join(format!("{name}.1"));
        fsutil::atomic_write(&path, &roff, true)?;
        writeln!(out.out, "{}", path.display()).map_err(Error::output)?;
    }
    Ok(ExitKind::Success)
}

/// The command and every visible subcommand, named as `man` finds them: `vfiotool-rom-parse`.
fn collect_pages(cmd: clap::Command, name: &str, pages: &mut Vec<(String, clap::Command)>) {
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .cloned()
        .collect();
    let page = cmd.name(name.to_string()).bin_name(name.replace('-', " "));
    pages.push((name.to_string(), page));
    for sub in subcommands {
        let sub_name = format!("{name}-{}", sub.get_name());
        collect_pages(sub, &sub_name, pages);
    }
}
