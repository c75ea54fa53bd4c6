//! Helpers shared by unit tests of several modules.

use std::path::Path;

/// Copies a cgroup folder of `tests/fixtures/wakeup` (plain files, without its
/// NOTES.md) into a temporary directory.
pub(crate) fn wakeup_fixture_copy(folder: &str) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wakeup")
        .join(folder);
    for entry in std::fs::read_dir(source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "NOTES.md" {
            std::fs::copy(entry.path(), target.path().join(entry.file_name())).unwrap();
        }
    }
    target
}
