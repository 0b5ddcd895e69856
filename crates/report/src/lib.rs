//! Renders the engine's answers for people and scripts.
//!
//! Every renderer returns text; styled text carries ANSI codes that the caller strips
//! when the output is not a terminal (the CLI writes through `anstream`).
//!
//! # Layout
//! - [`legend`]: one numbering of the endpoints shown, shared by every block.
//! - [`table`]: the terminal matrix, one block per port.
//! - [`markdown`]: the same for pull-request comments.
//! - [`json`]: the stable `analyze -o json` contract, and the summary's counts for scripts.
//! - [`summary`]: counts and the namespace pairs worth reading, for clusters too large to print.
//! - [`explain`]: one verdict in words.
//! - [`intent`]: declared intent checked against policy (`analyze --intent`).
//! - [`run`]: a verification run's report: table, JUnit.
//! - [`plan`]: what a run would do (`run --dry-run`).

pub mod explain;
pub mod intent;
pub mod json;
pub mod legend;
pub mod markdown;
pub mod plan;
pub mod run;
pub mod summary;
pub mod table;

mod style;
