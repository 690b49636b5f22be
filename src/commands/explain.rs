//! `vfiotool explain [FILE|-]`: read the text (bounded), match the known failures, print each
//! cause with its evidence line and the fix for this host (docs/explain.md).

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::cli::ExplainArgs;
use crate::error::{Error, ExitKind, Result};
use crate::explain::{self, Input, MAX_INPUT};
use crate::host::kmsg::{self, KernelLog};
use crate::host::HostRoot;
use crate::output::{Output, Style};

fn read(args: &ExplainArgs, root: &HostRoot) -> Result<Input> {
    if args.kernel_log {
        return match kmsg::read(root) {
            KernelLog::Read { lines, .. } => {
                let text = lines.join("\n");
                explain::read_input(&format!("/{}", kmsg::REL_PATH), text.as_bytes())
            }
            KernelLog::Unavailable(why) if root.is_live() => Err(Error::system(format!("kernel log: {why}"))),
            KernelLog::Unavailable(why) => Err(Error::system(format!(
                "kernel log of {}: {why} (vfiotool capture saves it as dev/kmsg)",
                root.base.display()
            ))),
        };
    }
    match args.file.as_deref() {
        // Waiting on a terminal for a paste nobody announced looks like a hang: say what to do.
        None if std::io::stdin().is_terminal() => Err(Error::usage(
            "no FILE: name a log file, pipe one in (journalctl -b | vfiotool explain -), or use --kernel-log",
        )),
        None => explain::read_input("-", std::io::stdin().lock()),
        Some(p) if p == Path::new("-") => explain::read_input("-", std::io::stdin().lock()),
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| Error::io(p, "opening", &e))?;
            if f.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(Error::usage(format!(
                    "{}: is a directory; name a log file",
                    p.display()
                )));
            }
            explain::read_input(&p.display().to_string(), f)
        }
    }
}

pub fn explain<W: Write>(args: &ExplainArgs, out: &mut Output<W>) -> Result<ExitKind> {
    let root = HostRoot::from_args(&args.root);
    let input = read(args, &root)?;
    let report = explain::explain(&input, &root);
    if out.json {
        out.json_doc(&report).map_err(Error::output)?;
    } else {
        let mut text = String::new();
        if report.truncated {
            text.push_str(&format!(
                "note: {} is larger than {} MiB: only the first {} MiB were read\n",
                report.input,
                MAX_INPUT >> 20,
                MAX_INPUT >> 20
            ));
        }
        if report.causes.is_empty() {
            text.push_str(&format!(
                "no known VFIO failure in {} ({} lines); docs/explain.md lists the messages recognised\n",
                report.input, report.lines
            ));
        }
        for (i, c) in report.causes.iter().enumerate() {
            let head = out.paint(Style::Bold, &format!("{}. {}", i + 1, c.id.as_str()));
            text.push_str(&format!("{head}  (line {}, {} matching)\n", c.line, c.matches));
            text.push_str(&format!("   seen:  {}\n", c.evidence));
            text.push_str(&format!("   cause: {}\n", c.explanation));
            for (j, line) in c.fix.lines().enumerate() {
                let lead = if j == 0 { "   fix:  " } else { "         " };
                text.push_str(&format!("{lead} {line}\n"));
            }
        }
        out.out.write_all(text.as_bytes()).map_err(Error::output)?;
    }
    Ok(if report.causes.is_empty() {
        ExitKind::VerdictNotMet
    } else {
        ExitKind::Success
    })
}
