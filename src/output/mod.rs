//! Output rules shared by every command: human text or JSON, colour, broken pipes.
//!
//! Reports are plain serde structs. The JSON printer serializes them as they are; the human
//! printers in each command read the same struct, so the two views cannot disagree. Colour is
//! used only on a terminal and never when `NO_COLOR` is set (https://no-color.org).

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

/// Where and how a command prints.
pub struct Output<W: Write> {
    pub out: W,
    pub json: bool,
    pub color: bool,
}

impl Output<io::Stdout> {
    /// Standard output, colour decided by the terminal and `NO_COLOR`.
    pub fn stdout(json: bool) -> Self {
        let color = !json && io::stdout().is_terminal() && no_color_unset(std::env::var_os("NO_COLOR"));
        Output {
            out: io::stdout(),
            json,
            color,
        }
    }
}

/// `NO_COLOR` disables colour when it is set to anything non-empty.
pub fn no_color_unset(value: Option<std::ffi::OsString>) -> bool {
    value.is_none_or(|v| v.is_empty())
}

/// Colour roles, mapped to ANSI codes only when colour is on.
#[derive(Debug, Clone, Copy)]
pub enum Style {
    Ok,
    Warn,
    Fail,
    Dim,
    Bold,
}

impl<W: Write> Output<W> {
    /// A buffer-backed output for tests.
    pub fn new(out: W, json: bool) -> Self {
        Output {
            out,
            json,
            color: false,
        }
    }

    /// Wrap `text` in the style's colour when colour is on.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match style {
            Style::Ok => "32",
            Style::Warn => "33",
            Style::Fail => "31",
            Style::Dim => "2",
            Style::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// One JSON document on one line.
    pub fn json_doc<T: Serialize>(&mut self, doc: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, doc).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }
}

/// The JSON document printed for an error in `--json` mode.
#[derive(Debug, Serialize)]
pub struct ErrorDoc<'a> {
    pub schema: &'static str,
    pub error: &'a str,
    pub kind: &'static str,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl<'a> ErrorDoc<'a> {
    /// The `vfiotool.error/1` document for `message` of `kind`; `file` names the input of a
    /// per-file error when a command reads several.
    pub fn new(message: &'a str, kind: crate::error::ExitKind, file: Option<String>) -> Self {
        ErrorDoc {
            schema: "vfiotool.error/1",
            error: message,
            kind: kind.name(),
            exit_code: kind.code(),
            file,
        }
    }
}

/// A one-line progress indicator for long steps (a slow ROM BAR read, a bind waiting for a
/// driver). It draws on stderr only when stderr is a terminal and the command is not in `--json`
/// mode, so pipes, logs and JSON consumers never see it.
pub struct Progress {
    enabled: bool,
    drawn: bool,
}

impl Progress {
    pub fn new(json: bool) -> Self {
        Self::with_terminal(json, io::stderr().is_terminal())
    }

    /// For tests: decide as if stderr were (or were not) a terminal.
    pub fn with_terminal(json: bool, terminal: bool) -> Self {
        Progress {
            enabled: terminal && !json,
            drawn: false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replace the progress line with `message`.
    pub fn update(&mut self, message: &str) {
        if self.enabled {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{message}");
            let _ = err.flush();
            self.drawn = true;
        }
    }

    /// Clear the line, leaving the terminal as it was.
    pub fn finish(&mut self) {
        if self.drawn {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_rules() {
        assert!(no_color_unset(None));
        assert!(no_color_unset(Some("".into())));
        assert!(!no_color_unset(Some("1".into())));
        let o = Output::new(Vec::new(), false);
        assert_eq!(o.paint(Style::Fail, "x"), "x");
    }

    #[test]
    fn progress_only_on_a_terminal_and_never_in_json() {
        assert!(Progress::with_terminal(false, true).enabled());
        assert!(!Progress::with_terminal(true, true).enabled());
        assert!(!Progress::with_terminal(false, false).enabled());
    }
}
