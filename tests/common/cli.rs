//! Running the `netcanary` binary as a user does, for the tests of the offline verbs: from
//! the repository's root, with none of the caller's `NETCANARY_*` settings leaking in.

#![allow(dead_code)] // Each CLI test uses a different part.

use std::process::{Command, Output};

/// `netcanary ARGS` from the repository's root.
pub fn netcanary(args: &[&str]) -> Output {
    command(args).output().expect("run netcanary")
}

/// The command [`netcanary`] runs, for tests that set more of its environment.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netcanary"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NETCANARY_") {
            command.env_remove(name);
        }
    }
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
