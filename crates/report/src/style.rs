//! The few styles the reports use, in one place so that they stay consistent.

use anstyle::{AnsiColor, Style};

pub const ALLOWED: Style = AnsiColor::Green.on_default();
pub const DENIED: Style = AnsiColor::Red.on_default().bold();
pub const DIM: Style = Style::new().dimmed();
pub const HEADING: Style = Style::new().bold();
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();

/// `text` wrapped in `style`'s escape codes.
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}
