//! Detection of the host's cgroup layout (unified v2, hybrid, legacy v1, none) and of this
//! process's own cgroups, from `/proc/self/mountinfo` and `/proc/self/cgroup`.
//!
//! Both roots are parameters so tests can run on fixture trees: `proc_root` replaces `/proc`,
//! and every mount point found in mountinfo is re-rooted under `sys_root` (`/` on a real host).

use std::fmt::Write as _;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};

use serde::Serialize;

use super::error::CgroupError;
use super::parse::parse_word_list;
use super::reader::CgroupKind;
use crate::kernel_text::ParseError;

/// How cgroups are mounted on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// Pure cgroup v2, and this process's cgroup offers the memory controller.
    Unified,
    /// The v1 memory hierarchy plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`,
    /// typically without the memory controller).
    Hybrid,
    /// cgroup v1 only.
    Legacy,
    /// No usable memory cgroup: nothing mounted, or cgroup2 without the memory controller.
    NoCgroups,
}

/// What [`detect`] found about the host's cgroups and this process's place in them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCgroups {
    /// The layout resctl will work with.
    pub layout: Layout,
    /// Where cgroup2 is mounted, e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`.
    pub v2_mount: Option<PathBuf>,
    /// Absolute directory of this process's v2 cgroup.
    pub v2_own: Option<PathBuf>,
    /// `cgroup.controllers` of [`v2_own`](Self::v2_own): what can be enabled below us.
    pub v2_controllers: Vec<String>,
    /// Where the v1 memory hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub memory_v1_mount: Option<PathBuf>,
    /// Absolute directory of this process's v1 memory cgroup.
    pub memory_v1_own: Option<PathBuf>,
    /// `<v2_own>/memory.pressure` is readable (PSI is available for our cgroup).
    pub psi: bool,
    /// resctl's v2 cgroup is the top of the tree it can see yet not the host's root cgroup
    /// (which has no `cgroup.type`): the root of a cgroup namespace, or a subtree that a
    /// container runtime mounted — a container's cgroup.
    pub v2_enclosed: bool,
}

/// One cgroup-related line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The cgroup directory mounted there (field 4), `/` unless a sub-tree is bind-mounted.
    pub root: String,
    /// Where it is mounted (field 5), octal escapes such as `\040` decoded.
    pub mount_point: PathBuf,
    /// `cgroup2` or `cgroup`.
    pub fs_type: String,
    /// The super options (last field), e.g. `rw,memory` for the v1 memory hierarchy.
    pub super_options: Vec<String>,
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroupLine {
    /// Hierarchy id; 0 for cgroup v2.
    pub hierarchy_id: u32,
    /// The v1 controllers of this hierarchy (e.g. `memory`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup's path relative to the hierarchy's root (or to the cgroup namespace root).
    pub path: String,
}

/// Decodes the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash)
/// that mountinfo uses in paths.
fn unescape_mount_path(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            if let Some(digits) = bytes.get(index + 1..index + 4) {
                if digits.iter().all(|digit| (b'0'..=b'7').contains(digit)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, digit| acc * 8 + u32::from(digit - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        index += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the `cgroup` and `cgroup2` mounts out of mountinfo text (other lines are skipped).
///
/// Format (proc(5)): `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
pub fn parse_cgroup_mounts(file: &Path, text: &str) -> Result<Vec<CgroupMount>, ParseError> {
    let mut mounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed =
            |reason: &str| ParseError::new(file.display().to_string(), index + 1, line, reason);
        let (before, after) = line
            .split_once(" - ")
            .ok_or_else(|| malformed("no \" - \" separator before the filesystem type"))?;
        let mut after_words = after.split_ascii_whitespace();
        let fs_type = after_words
            .next()
            .ok_or_else(|| malformed("no filesystem type after \" - \""))?;
        if fs_type != "cgroup" && fs_type != "cgroup2" {
            continue;
        }
        let _source = after_words.next();
        let super_options = after_words
            .next()
            .map(|options| options.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let before_words: Vec<&str> = before.split_ascii_whitespace().collect();
        let [_id, _parent, _device, root, mount_point, ..] = before_words[..] else {
            return Err(malformed("fewer than 5 fields before \" - \""));
        };
        mounts.push(CgroupMount {
            root: unescape_mount_path(root),
            mount_point: PathBuf::from(unescape_mount_path(mount_point)),
            fs_type: fs_type.to_owned(),
            super_options,
        });
    }
    Ok(mounts)
}

/// Parses `/proc/self/cgroup`.
pub fn parse_proc_cgroup(file: &Path, text: &str) -> Result<Vec<ProcCgroupLine>, ParseError> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed =
            |reason: &str| ParseError::new(file.display().to_string(), index + 1, line, reason);
        // The path may itself contain ':' — split only the first two.
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected \"id:controllers:path\""));
        };
        let hierarchy_id = id
            .parse::<u32>()
            .map_err(|_| malformed("hierarchy id is not a number"))?;
        lines.push(ProcCgroupLine {
            hierarchy_id,
            controllers: controllers
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
            path: path.to_owned(),
        });
    }
    Ok(lines)
}

/// `mount_point` as seen under `sys_root`.
fn reroot(sys_root: &Path, mount_point: &Path) -> PathBuf {
    sys_root.join(mount_point.strip_prefix("/").unwrap_or(mount_point))
}

/// The absolute directory of the cgroup `cgroup_path` in a hierarchy mounted at `mount`
/// (already re-rooted). `None` when the cgroup lies outside the mounted sub-tree.
fn own_dir(mount_dir: &Path, mount_root: &str, cgroup_path: &str) -> Option<PathBuf> {
    let relative = if mount_root == "/" {
        cgroup_path
    } else {
        // A bind-mounted sub-tree (containers without a cgroup namespace): strip its root.
        let rest = cgroup_path.strip_prefix(mount_root.trim_end_matches('/'))?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest
    };
    let relative = relative.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if relative.is_empty() {
        mount_dir.to_path_buf()
    } else {
        mount_dir.join(relative)
    })
}

fn read_text(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(CgroupError::read(path, error)),
    }
}

/// Detects the cgroup layout and this process's own cgroups.
///
/// Reads `<proc_root>/self/mountinfo` and `<proc_root>/self/cgroup`; mount points are looked
/// up under `sys_root`. On a real host call `detect(Path::new("/proc"), Path::new("/"))`.
/// A host without `/proc/self/cgroup` (kernel without cgroups) gives [`Layout::NoCgroups`].
pub fn detect(proc_root: &Path, sys_root: &Path) -> Result<HostCgroups, CgroupError> {
    let mountinfo_path = proc_root.join("self/mountinfo");
    let mountinfo = std::fs::read_to_string(&mountinfo_path)
        .map_err(|error| CgroupError::read(&mountinfo_path, error))?;
    let mounts = parse_cgroup_mounts(&mountinfo_path, &mountinfo)?;
    let cgroup_path = proc_root.join("self/cgroup");
    let own = match read_text(&cgroup_path)? {
        Some(text) => parse_proc_cgroup(&cgroup_path, &text)?,
        None => Vec::new(),
    };

    // cgroup2: prefer the canonical mount points; any other cgroup2 mount otherwise.
    let v2_mounts: Vec<&CgroupMount> = mounts.iter().filter(|m| m.fs_type == "cgroup2").collect();
    let v2 = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .find_map(|preferred| {
            v2_mounts
                .iter()
                .find(|mount| mount.mount_point == Path::new(preferred))
        })
        .or_else(|| v2_mounts.first())
        .copied();
    let v2_mount = v2.map(|mount| reroot(sys_root, &mount.mount_point));
    let v2_own = match (v2, &v2_mount) {
        (Some(mount), Some(dir)) => own
            .iter()
            .find(|line| line.hierarchy_id == 0 && line.controllers.is_empty())
            .and_then(|line| own_dir(dir, &mount.root, &line.path)),
        _ => None,
    };
    let v2_controllers = match &v2_own {
        Some(dir) => read_text(&dir.join("cgroup.controllers"))?
            .map(|text| parse_word_list(&text))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let psi = v2_own
        .as_ref()
        .is_some_and(|dir| std::fs::read(dir.join("memory.pressure")).is_ok());
    let v2_enclosed = match (&v2_own, &v2_mount) {
        (Some(own), Some(mount)) => own == mount && mount.join("cgroup.type").exists(),
        _ => false,
    };

    let memory_v1 = mounts.iter().find(|mount| {
        mount.fs_type == "cgroup" && mount.super_options.iter().any(|option| option == "memory")
    });
    let memory_v1_mount = memory_v1.map(|mount| reroot(sys_root, &mount.mount_point));
    let memory_v1_own = match (memory_v1, &memory_v1_mount) {
        (Some(mount), Some(dir)) => own
            .iter()
            .find(|line| line.controllers.iter().any(|name| name == "memory"))
            .and_then(|line| own_dir(dir, &mount.root, &line.path)),
        _ => None,
    };

    let has_v1_memory = memory_v1_own.is_some();
    let layout = if has_v1_memory && v2_mount.is_some() {
        Layout::Hybrid
    } else if has_v1_memory {
        Layout::Legacy
    } else if v2_own.is_some() && v2_controllers.iter().any(|name| name == "memory") {
        Layout::Unified
    } else {
        Layout::NoCgroups
    };

    Ok(HostCgroups {
        layout,
        v2_mount,
        v2_own,
        v2_controllers,
        memory_v1_mount,
        memory_v1_own,
        psi,
        v2_enclosed,
    })
}

impl HostCgroups {
    /// The directory to read the job's memory from, and how: the v2 own cgroup on
    /// [`Layout::Unified`], the v1 memory cgroup on hybrid and legacy hosts, `None` otherwise.
    pub fn memory_cgroup(&self) -> Option<(&Path, CgroupKind)> {
        match self.layout {
            Layout::Unified => self.v2_own.as_deref().map(|dir| (dir, CgroupKind::V2)),
            Layout::Hybrid | Layout::Legacy => self
                .memory_v1_own
                .as_deref()
                .map(|dir| (dir, CgroupKind::V1Memory)),
            Layout::NoCgroups => None,
        }
    }

    /// One-line human summary, e.g. for `resctl doctor` and the start-up log.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let path = |dir: &Option<PathBuf>| {
            dir.as_ref()
                .map_or_else(|| "?".to_owned(), |dir| dir.display().to_string())
        };
        let controllers = if self.v2_controllers.is_empty() {
            "none".to_owned()
        } else {
            self.v2_controllers.join(" ")
        };
        let psi = if self.psi { "PSI available" } else { "no PSI" };
        match self.layout {
            Layout::Unified => {
                let _ = write!(
                    text,
                    "cgroup v2 (unified) at {}; own cgroup {} (controllers: {controllers}); {psi}",
                    path(&self.v2_mount),
                    path(&self.v2_own),
                );
            }
            Layout::Hybrid => {
                let _ = write!(
                    text,
                    "hybrid cgroups: v1 memory at {}, own memory cgroup {}; cgroup2 at {} \
                     (controllers: {controllers}); {psi}",
                    path(&self.memory_v1_mount),
                    path(&self.memory_v1_own),
                    path(&self.v2_mount),
                );
            }
            Layout::Legacy => {
                let _ = write!(
                    text,
                    "legacy cgroup v1: memory at {}, own memory cgroup {}; no cgroup2, no PSI",
                    path(&self.memory_v1_mount),
                    path(&self.memory_v1_own),
                );
            }
            Layout::NoCgroups => {
                text.push_str("no usable memory cgroup: ");
                match (&self.v2_mount, &self.memory_v1_mount) {
                    (Some(mount), _) if self.v2_own.is_none() => {
                        let _ = write!(
                            text,
                            "cgroup2 at {} but this process's cgroup is outside it",
                            mount.display()
                        );
                    }
                    (Some(mount), _) => {
                        let _ = write!(
                            text,
                            "cgroup2 at {} without the memory controller for {} (controllers: {controllers})",
                            mount.display(),
                            path(&self.v2_own),
                        );
                    }
                    (None, Some(mount)) => {
                        let _ = write!(
                            text,
                            "v1 memory at {} but this process's memory cgroup is not in it",
                            mount.display()
                        );
                    }
                    (None, None) => text.push_str("no cgroup filesystem is mounted"),
                }
                text.push_str("; monitor-only");
            }
        }
        text
    }

    /// Whether this process may write into `dir` (create child cgroups, write its files):
    /// `access(dir, W_OK)`.
    pub fn is_writable(dir: &Path) -> bool {
        nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
    }

    /// Resolves a cgroup directory a user named (`--cgroup-parent`): the path is resolved
    /// by the kernel (`..` and symlinks included), the directory opened with `O_PATH`
    /// (never following a last symlink), and accepted only when `fstatfs` says cgroupfs and
    /// the resolved path lies inside the cgroup2 mount or the v1 memory hierarchy — never
    /// by the text of the path. Returns the resolved directory and its kind.
    ///
    /// # Errors
    ///
    /// A message naming the path: missing, not a directory, not on cgroupfs, or outside
    /// the hierarchies resctl uses.
    pub fn resolve_dir(&self, path: &Path) -> Result<(PathBuf, CgroupKind), String> {
        let shown = path.display();
        let resolved = std::fs::canonicalize(path)
            .map_err(|err| format!("{shown}: no such cgroup directory ({err})"))?;
        let fd = nix::fcntl::open(
            &resolved,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| format!("{shown}: not a directory ({errno})"))?;
        let named = nix::sys::stat::stat(path).map_err(|errno| format!("{shown}: {errno}"))?;
        let opened =
            nix::sys::stat::fstat(fd.as_fd()).map_err(|errno| format!("{shown}: {errno}"))?;
        if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino) {
            return Err(format!("{shown}: changed while it was being resolved"));
        }
        let magic = fstatfs(fd.as_fd())
            .map_err(|errno| format!("{shown}: {errno}"))?
            .filesystem_type();
        let (kind, mount) = if magic == CGROUP2_SUPER_MAGIC {
            (CgroupKind::V2, self.v2_mount.as_deref())
        } else if magic == CGROUP_SUPER_MAGIC {
            (CgroupKind::V1Memory, self.memory_v1_mount.as_deref())
        } else {
            return Err(format!(
                "{shown} (resolved: {}) is not on a cgroup filesystem",
                resolved.display()
            ));
        };
        match mount {
            Some(mount) if resolved.starts_with(mount) => Ok((resolved, kind)),
            _ => Err(format!(
                "{shown} (resolved: {}) is not inside the cgroup2 mount or the v1 memory \
                 hierarchy",
                resolved.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_root(layout: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(layout)
    }

    #[test]
    fn hybrid_fixture() {
        let root = fixture_root("hybrid");
        // Mount points /sys/fs/cgroup/... are re-rooted under the fixture's root.
        let host = detect(&root.join("proc"), &root).unwrap();
        let sys = &root;
        assert_eq!(host.layout, Layout::Hybrid);
        assert_eq!(host.v2_mount, Some(sys.join("sys/fs/cgroup/unified")));
        assert_eq!(host.v2_own, Some(sys.join("sys/fs/cgroup/unified")));
        assert_eq!(host.v2_controllers, ["hugetlb"]);
        assert_eq!(host.memory_v1_mount, Some(sys.join("sys/fs/cgroup/memory")));
        assert_eq!(
            host.memory_v1_own,
            Some(sys.join("sys/fs/cgroup/memory/host.slice/session-1.scope/fixture-job"))
        );
        assert!(!host.psi, "the fixture has no unified/memory.pressure");
        let (dir, kind) = host.memory_cgroup().unwrap();
        assert_eq!(kind, CgroupKind::V1Memory);
        assert!(dir.ends_with("fixture-job"));
        let text = host.describe();
        assert!(text.starts_with("hybrid cgroups: v1 memory at "), "{text}");
        assert!(text.contains("(controllers: hugetlb)"), "{text}");
    }

    #[test]
    fn unified_fixture() {
        let root = fixture_root("v2");
        let host = detect(&root.join("proc"), &root).unwrap();
        assert_eq!(host.layout, Layout::Unified);
        assert_eq!(host.v2_mount, Some(root.join("sys/fs/cgroup")));
        let job = root.join("sys/fs/cgroup/system.slice/vmtest.service/fixture-job");
        assert_eq!(host.v2_own.as_ref(), Some(&job));
        assert_eq!(host.v2_controllers, ["cpu", "memory", "pids"]);
        assert_eq!(host.memory_v1_mount, None);
        assert_eq!(host.memory_v1_own, None);
        assert!(host.psi);
        assert_eq!(host.memory_cgroup(), Some((job.as_path(), CgroupKind::V2)));
        assert!(host.describe().starts_with("cgroup v2 (unified) at "));
    }

    /// Builds a proc tree with the given mountinfo and /proc/self/cgroup texts.
    fn proc_tree(mountinfo: &str, cgroup: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("self")).unwrap();
        std::fs::write(dir.path().join("self/mountinfo"), mountinfo).unwrap();
        if let Some(cgroup) = cgroup {
            std::fs::write(dir.path().join("self/cgroup"), cgroup).unwrap();
        }
        dir
    }

    #[test]
    fn legacy_when_no_cgroup2_mount() {
        let hybrid =
            std::fs::read_to_string(fixture_root("hybrid").join("proc/self/mountinfo")).unwrap();
        let legacy: String = hybrid
            .lines()
            .filter(|line| !line.contains("cgroup2"))
            .map(|line| format!("{line}\n"))
            .collect();
        let cgroup = "4:memory:/a/b\n1:cpu:/\n";
        let proc_dir = proc_tree(&legacy, Some(cgroup));
        let host = detect(proc_dir.path(), Path::new("/x")).unwrap();
        assert_eq!(host.layout, Layout::Legacy);
        assert_eq!(
            host.memory_v1_own,
            Some(PathBuf::from("/x/sys/fs/cgroup/memory/a/b"))
        );
        assert_eq!(host.v2_mount, None);
        assert!(!host.psi);
        assert!(host.describe().starts_with("legacy cgroup v1"));
    }

    #[test]
    fn no_cgroups_without_mounts_or_without_memory() {
        let proc_dir = proc_tree("26 1 254:1 / / rw - ext4 /dev/vda rw\n", None);
        let host = detect(proc_dir.path(), Path::new("/")).unwrap();
        assert_eq!(host.layout, Layout::NoCgroups);
        assert_eq!(host.memory_cgroup(), None);
        assert!(host.describe().contains("no cgroup filesystem is mounted"));

        // cgroup2 whose own cgroup lacks the memory controller (not delegated).
        let sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("sys/fs/cgroup/user.slice")).unwrap();
        std::fs::write(
            sys.path()
                .join("sys/fs/cgroup/user.slice/cgroup.controllers"),
            "cpu pids\n",
        )
        .unwrap();
        let proc_dir = proc_tree(
            "27 21 0:24 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
            Some("0::/user.slice\n"),
        );
        let host = detect(proc_dir.path(), sys.path()).unwrap();
        assert_eq!(host.layout, Layout::NoCgroups);
        assert_eq!(host.v2_controllers, ["cpu", "pids"]);
        assert!(
            host.describe().contains("without the memory controller"),
            "{}",
            host.describe()
        );
    }

    #[test]
    fn a_cgroup_namespace_root_is_enclosed_and_the_hosts_root_is_not() {
        let mountinfo = "27 21 0:24 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 ro\n";
        let sys = tempfile::tempdir().unwrap();
        let mount = sys.path().join("sys/fs/cgroup");
        std::fs::create_dir_all(&mount).unwrap();
        std::fs::write(mount.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let proc_dir = proc_tree(mountinfo, Some("0::/\n"));
        // The host's root cgroup has no cgroup.type.
        let host = detect(proc_dir.path(), sys.path()).unwrap();
        assert_eq!(host.v2_own.as_deref(), Some(mount.as_path()));
        assert!(!host.v2_enclosed);
        // A namespace's root is a cgroup like any other below the host's root.
        std::fs::write(mount.join("cgroup.type"), "domain\n").unwrap();
        let host = detect(proc_dir.path(), sys.path()).unwrap();
        assert!(host.v2_enclosed);
        assert_eq!(host.layout, Layout::Unified);
        // Below the top of its tree, resctl is not the container's cgroup.
        std::fs::create_dir(mount.join("job")).unwrap();
        std::fs::write(mount.join("job/cgroup.controllers"), "memory\n").unwrap();
        let proc_dir = proc_tree(mountinfo, Some("0::/job\n"));
        assert!(!detect(proc_dir.path(), sys.path()).unwrap().v2_enclosed);
    }

    #[test]
    fn bind_mounted_subtree_and_escapes() {
        let mountinfo = "50 40 0:30 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                         51 40 0:31 / /mnt/with\\040space rw - cgroup cgroup rw,memory\n";
        let mounts = parse_cgroup_mounts(Path::new("m"), mountinfo).unwrap();
        assert_eq!(mounts[1].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(mounts[1].super_options, ["rw", "memory"]);
        let proc_dir = proc_tree(mountinfo, Some("3:memory:/j\n0::/docker/abc/job\n"));
        let host = detect(proc_dir.path(), Path::new("/")).unwrap();
        assert_eq!(host.v2_own, Some(PathBuf::from("/sys/fs/cgroup/job")));
        assert_eq!(host.memory_v1_own, Some(PathBuf::from("/mnt/with space/j")));
        assert_eq!(
            own_dir(Path::new("/m"), "/docker/abc", "/docker/abcd"),
            None
        );
        assert_eq!(own_dir(Path::new("/m"), "/", "/a/../b"), None);
    }

    #[test]
    fn malformed_input_names_file_and_line() {
        let proc_dir = proc_tree(
            "26 1 254:1 / / rw - ext4 /dev/vda rw\nbroken cgroup2 line\n",
            None,
        );
        let err = detect(proc_dir.path(), Path::new("/")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("self/mountinfo"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        let err =
            parse_proc_cgroup(Path::new("/proc/self/cgroup"), "0::/\nx:memory:/\n").unwrap_err();
        assert_eq!((err.line_number, err.line.as_str()), (2, "x:memory:/"));
        let err = parse_proc_cgroup(Path::new("/proc/self/cgroup"), "4-memory\n").unwrap_err();
        assert_eq!(err.line_number, 1);
        let err = detect(Path::new("/nonexistent-proc"), Path::new("/")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-proc/self/mountinfo"),
            "{err}"
        );
    }

    #[test]
    fn proc_cgroup_lines() {
        let root = fixture_root("hybrid");
        let path = root.join("proc/self/cgroup");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = parse_proc_cgroup(&path, &text).unwrap();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[0].controllers, ["name=systemd"]);
        assert_eq!(lines[5].hierarchy_id, 4);
        assert_eq!(lines[5].path, "/host.slice/session-1.scope/fixture-job");
        assert_eq!(lines[9].hierarchy_id, 0);
        assert!(lines[9].controllers.is_empty());
        let colon = parse_proc_cgroup(&path, "0::/a:b\n").unwrap();
        assert_eq!(colon[0].path, "/a:b");
    }

    #[test]
    fn live_host() {
        let host = detect(Path::new("/proc"), Path::new("/")).unwrap();
        eprintln!("{}", host.describe());
        let v1_memory = Path::new("/sys/fs/cgroup/memory/memory.usage_in_bytes").exists();
        let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
        if !(v1_memory && unified) {
            // The development machine is hybrid; elsewhere (e.g. the v2 VM) just require
            // detection to succeed and find some layout consistent with the mounts.
            let v2_root = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
            assert!(!v2_root || host.v2_mount == Some(PathBuf::from("/sys/fs/cgroup")));
            return;
        }
        assert_eq!(host.layout, Layout::Hybrid);
        assert_eq!(host.v2_mount, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            host.memory_v1_mount,
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let memory_path = own
            .lines()
            .find_map(|line| line.split_once(":memory:").map(|(_, path)| path.to_owned()))
            .unwrap();
        let expected: PathBuf = format!("/sys/fs/cgroup/memory/{memory_path}")
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(PathBuf::from("/"), |path, part| path.join(part));
        assert_eq!(host.memory_v1_own.as_ref(), Some(&expected));
        assert!(expected.join("memory.usage_in_bytes").exists());
        if nix::unistd::geteuid().is_root() {
            assert!(HostCgroups::is_writable(&expected));
        }
        assert!(!HostCgroups::is_writable(Path::new("/proc/self/cgroup/x")));
    }
}
