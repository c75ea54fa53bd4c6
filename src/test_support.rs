//! Helpers shared by unit tests of several modules.

use std::path::Path;

/// Rendering an SVG and counting its pixels, shared with the integration tests.
#[path = "../tests/common/render.rs"]
pub(crate) mod render;

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

/// The text of a file under `tests/fixtures/proc/`, read at compile time.
macro_rules! proc_fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/",
            $path
        ))
    };
}
pub(crate) use proc_fixture;
