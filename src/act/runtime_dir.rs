//! The per-run folder holding the files resctl shares with the job (the
//! thread-count file today; the control socket later).

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A folder created for one run and removed (with its contents) when dropped.
#[derive(Debug)]
pub struct RuntimeDir {
    path: PathBuf,
}

impl RuntimeDir {
    /// Creates `<base>/resctl/<id>` with mode 0700, where base is
    /// `$XDG_RUNTIME_DIR`, else `/run` for root, else the temp folder.
    pub fn create(id: &str) -> io::Result<Self> {
        Self::create_in(&default_base(), id)
    }

    /// Creates `<base>/resctl/<id>` (mode 0700).
    pub fn create_in(base: &Path, id: &str) -> io::Result<Self> {
        let parent = base.join("resctl");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&parent)?;
        let path = parent.join(id);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(RuntimeDir { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn default_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let run = Path::new("/run");
    if nix::unistd::geteuid().is_root()
        && nix::unistd::access(run, nix::unistd::AccessFlags::W_OK).is_ok()
    {
        return run.to_path_buf();
    }
    std::env::temp_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let dir = RuntimeDir::create_in(base.path(), "42").unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.ends_with("resctl/42"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(dir);
        assert!(!path.exists());
    }
}
