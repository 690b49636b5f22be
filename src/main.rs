//! The `vfiotool` binary: parse the command line, run the library command, print, and map the
//! error kind to the documented exit code. Nothing else lives here.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use vfiotool::cli::Cli;
use vfiotool::error::ExitKind;
use vfiotool::output::{ErrorDoc, Output};

fn main() -> ExitCode {
    let json_requested = std::env::args_os().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = err.exit_code();
            if json_requested && err.use_stderr() {
                // clap's kind alone ("unexpected argument found") drops which argument; its
                // rendered first line keeps it, without the ANSI styling or the usage block.
                let rendered = err.render().to_string();
                let first = rendered.lines().next().unwrap_or_default();
                let text = first.strip_prefix("error: ").unwrap_or(first);
                print_json_error(&format!("usage: {text}"), ExitKind::Usage);
            } else {
                let _ = err.print();
            }
            return ExitCode::from(code as u8);
        }
    };
    let mut out = Output::stdout(cli.json);
    match vfiotool::commands::run(cli.command, &mut out) {
        Ok(kind) => ExitCode::from(kind.code()),
        Err(err) if err.broken_pipe => ExitCode::SUCCESS,
        Err(err) => {
            if out.json {
                print_json_error(&err.message, err.kind);
            } else {
                let _ = writeln!(std::io::stderr(), "vfiotool: {}", err.message);
            }
            ExitCode::from(err.kind.code())
        }
    }
}

fn print_json_error(message: &str, kind: ExitKind) {
    let mut out = Output::new(std::io::stdout(), true);
    let _ = out.json_doc(&ErrorDoc::new(message, kind, None));
}
