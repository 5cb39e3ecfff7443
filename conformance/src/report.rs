//! What the modes share to report: the `--json` and `--quiet` options of
//! `abi` and `peer`, where the text and the JSON go, and plain-text tables.

use std::io::Write;
use std::path::PathBuf;

use clap::Args as ClapArgs;
use serde::Serialize;

/// The report options of `abi` and `peer` (flattened into their `Args`).
#[derive(ClapArgs, Debug)]
pub struct ReportArgs {
    /// Write the report as JSON to FILE ("-": stdout, instead of the text).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl ReportArgs {
    /// A progress line on stderr, unless --quiet.
    pub fn progress(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// The report: `text()` on stdout unless the JSON goes there, then the
    /// JSON where --json says.
    pub fn publish(
        &self,
        text: impl FnOnce() -> String,
        value: &impl Serialize,
    ) -> Result<(), String> {
        if !json_to_stdout(&self.json) {
            emit(&text());
        }
        write_json(&self.json, value)
    }
}

/// Whether `--json -` sends the JSON to stdout (instead of the text).
pub fn json_to_stdout(json: &Option<PathBuf>) -> bool {
    json.as_ref().is_some_and(|p| p.as_os_str() == "-")
}

/// Prints to stdout; a closed pipe (`| head`) ends the program quietly.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Where the JSON report goes, when asked for.
pub fn write_json(path: &Option<PathBuf>, value: &impl Serialize) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    if path.as_os_str() == "-" {
        emit(&(text + "\n"));
        return Ok(());
    }
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Columns of text, left-aligned first column, right-aligned numbers.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |r: &Vec<String>| {
            let mut s = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = r.get(i).map_or("", |c| c.as_str());
                // Numbers (and only numbers) are right-aligned.
                let numeric = i > 0
                    && c.chars().next().is_some_and(|ch| ch.is_ascii_digit())
                    && c.chars()
                        .all(|ch| ch.is_ascii_digit() || ".,%s ".contains(ch));
                if numeric {
                    s.push_str(&format!("{c:>w$}  "));
                } else {
                    s.push_str(&format!("{c:<w$}  "));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        out.push_str(&line(&width.iter().map(|w| "-".repeat(*w)).collect()));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}
