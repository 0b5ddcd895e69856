//! netcanary: proves from inside a Kubernetes cluster that its network policy is really enforced.
//!
//! The binary is a thin shell: every verb lives in [`cli`], which hands the work to the
//! library crates (`netcanary-objects`, `netcanary-policy`, `netcanary-probe`, `netcanary-report`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
