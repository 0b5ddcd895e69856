//! What `analyze` and `lint` share: the manifests they read, the flags that say how, and
//! the diagnostics printed before either does its work.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use netcanary_objects::{Diagnostic, Loaded, Severity};

/// The manifests a verb reads and how it treats their errors.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// Manifest files or folders (YAML or JSON; multi-document YAML, `kind: List` and typed
    /// lists such as `PodList`).
    /// Folders are read recursively for .yaml, .yml and .json files.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,

    /// Namespace for namespaced objects that do not name one.
    #[arg(short, long, default_value = "default", env = "NETCANARY_NAMESPACE")]
    pub namespace: String,

    /// Go on with what could be read even when some objects have errors (they are left out).
    #[arg(long)]
    pub keep_going: bool,

    /// List every diagnostic: objects skipped on purpose (unknown kinds, finished pods) and
    /// every repetition of a warning, which are otherwise counted.
    #[arg(long)]
    pub all_diagnostics: bool,
}

impl ManifestArgs {
    /// Reads the manifests and prints their diagnostics. When they have errors and
    /// `--keep-going` was not given, says so and gives the exit status 2 instead.
    pub fn load(&self) -> Result<Loaded, ExitCode> {
        let loaded = netcanary_objects::load_paths(&self.paths, &self.namespace);
        report_diagnostics(&loaded.diagnostics, self.all_diagnostics);
        if loaded.has_errors() && !self.keep_going {
            eprintln!("\nThe input has errors (above): fix them, or pass --keep-going to go on with the rest.");
            return Err(ExitCode::from(2));
        }
        Ok(loaded)
    }
}

/// How many diagnostics with the same message are listed before the rest are counted.
const SAME_MESSAGE_LIMIT: usize = 5;

/// Prints the manifest reader's diagnostics on stderr: errors and warnings, each message
/// at most [`SAME_MESSAGE_LIMIT`] times, and notes only when `all`.
fn report_diagnostics(diagnostics: &[Diagnostic], all: bool) {
    let mut stderr = anstream::stderr().lock();
    let mut hidden_notes = 0;
    let mut seen: HashMap<(Severity, &str), usize> = HashMap::new();
    for d in diagnostics {
        let style = match d.severity {
            Severity::Error => anstyle::AnsiColor::Red.on_default().bold(),
            Severity::Warning => anstyle::AnsiColor::Yellow.on_default().bold(),
            Severity::Note if all => anstyle::Style::new().dimmed(),
            Severity::Note => {
                hidden_notes += 1;
                continue;
            }
        };
        let count = seen.entry((d.severity, d.message.as_str())).or_default();
        *count += 1;
        if *count > SAME_MESSAGE_LIMIT && !all {
            continue;
        }
        let text = d.to_string();
        let (label, rest) = text.split_once(": ").unwrap_or((&text, ""));
        let _ = writeln!(stderr, "{style}{label}{style:#}: {rest}");
    }
    let mut repeated: Vec<_> = seen.into_iter().filter(|(_, n)| *n > SAME_MESSAGE_LIMIT && !all).collect();
    repeated.sort();
    for ((severity, message), n) in repeated {
        let more = n - SAME_MESSAGE_LIMIT;
        let _ = writeln!(
            stderr,
            "{}: … and {more} more like \"{message}\" (--all-diagnostics lists them)",
            severity.as_str()
        );
    }
    if hidden_notes > 0 {
        let _ = writeln!(
            stderr,
            "note: {hidden_notes} object(s) skipped on purpose (kinds netcanary does not use, finished pods); --all-diagnostics lists them"
        );
    }
}
