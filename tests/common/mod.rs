//! Helpers shared by the integration tests.

pub mod bed;
pub mod kube_fixture;
pub mod kubelet;
pub mod kubelet_api;
pub mod monitoring;
pub mod netns;
pub mod node;
pub mod scratch;

/// A file of the repository, by its path from the repository's root.
#[allow(dead_code)] // Not every integration test reads the repository's files.
pub fn repo_file(path: impl AsRef<std::path::Path>) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The text of a file of the repository; a failure names the file.
#[allow(dead_code)] // Not every integration test reads the repository's files.
pub fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `to` relative to the directory `from` (both absolute, on one file system).
#[allow(dead_code)] // Only the tests that render kustomizations compare paths.
pub fn relative(from: &std::path::Path, to: &std::path::Path) -> std::path::PathBuf {
    let common = from.ancestors().find(|a| to.starts_with(a)).expect("a common ancestor");
    let ups = from.strip_prefix(common).expect("under the ancestor").components().count();
    let mut path: std::path::PathBuf = std::iter::repeat_n("..", ups).collect();
    path.push(to.strip_prefix(common).expect("under the ancestor"));
    path
}

/// Asserts that a command `what` succeeded; when not, shows what it printed.
#[allow(dead_code)] // Not every integration test runs commands of its own.
pub fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}); stdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How a test meets a prerequisite it cannot have: a `SKIPPED <test>: needs <what>` line
/// and `None`; or a failure, so nothing passes by being skipped, when the environment
/// variable `require` is `1` (tests/run.sh sets it where the prerequisite can be had) or
/// when `CI` is `true` (CI has every prerequisite, so a missing one is a broken install).
pub fn skip_unless_required<T>(test: &str, require: &str, needs: &str) -> Option<T> {
    if let Some(why) = required(require, |name| std::env::var(name).ok()) {
        panic!("{test}: needs {needs}, and {why}");
    }
    // One write to the stderr handle: eprintln! would be captured by the test harness.
    let line = format!("SKIPPED {test}: needs {needs}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    None
}

/// Why a missing prerequisite must fail the test rather than skip it, if it must.
pub fn required(require: &str, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var(require).as_deref() == Some("1") {
        Some(format!("{require}=1"))
    } else if var("CI").is_some_and(|ci| ci.eq_ignore_ascii_case("true") || ci == "1") {
        Some("CI is set: every prerequisite must be there".into())
    } else {
        None
    }
}
