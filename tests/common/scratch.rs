//! Scratch directories for tests: one place for what they are called and that they go.

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::path::{Path, PathBuf};

/// A directory under the system's temporary directory, named for `what` it holds, removed
/// with everything in it on drop (also when a test panics).
pub struct ScratchDir(tempfile::TempDir);

impl ScratchDir {
    pub fn new(what: &str) -> ScratchDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netcanary-{what}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("create a scratch directory for {what}: {e}"));
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `contents` to the file `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}
