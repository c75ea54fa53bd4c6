//! Placement: where the job's cgroup goes, created before the job runs and
//! removed after it, whatever happened.
//!
//! - **v2, a subtree resctl owns** (its own cgroup under a systemd scope with
//!   `Delegate=yes`, a container's cgroup namespace, or `--cgroup-parent`):
//!   `<base>/resctl-<pid>/job` holds the job. When resctl sits in `<base>`
//!   itself and `<base>` does not yet hand the memory controller to its
//!   children, resctl first moves itself to `<base>/resctl-<pid>/supervisor`
//!   (cgroup v2's no-internal-process rule) and enables the controllers.
//! - **v1** (hybrid hosts): `<own memory cgroup>/resctl-<pid>/job` in the v1
//!   memory hierarchy. Where the host's cgroup2 mount has PSI, the job also gets
//!   `<own v2 cgroup>/resctl-<pid>/job` there, with no controller: its pressure
//!   files are the job's own stalls, where `/proc/pressure` counts every other
//!   process on the host too.
//! - **monitor-only**: no writable cgroup; the job runs where resctl runs and is
//!   watched through `/proc` only.
//!
//! resctl never writes outside what it created, except enabling controllers in
//! the subtree it was given (and it undoes that on the way out).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cgroup::detect::{parse_proc_cgroup, HostCgroups, Layout};
use crate::cgroup::reader::{CgroupKind, LimitChain};
use crate::cgroup::writer;
use crate::cgroup::CgroupError;

/// Prefix of every cgroup resctl creates; the suffix is resctl's pid, so
/// leftovers of a resctl that was SIGKILLed can be recognised and removed.
pub const CGROUP_PREFIX: &str = "resctl-";
/// Why a job's cgroup may not be removable at the end, and what becomes of it.
const LEFT_BEHIND: &str =
    "processes the job left behind may still run there; the next resctl run removes it once empty";
/// Controllers resctl enables for the job where it can.
pub const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct PlacementRequest {
    /// Put the job's cgroup under this directory instead of resctl's own cgroup.
    pub cgroup_parent: Option<PathBuf>,
    /// Do not create cgroups at all.
    pub monitor_only: bool,
    /// Unique name of this run (resctl's pid).
    pub run_id: u32,
    /// Why resctl has no scope of its own where it asked for one (see
    /// `run::setup::enter_scope`): said instead of the bare fact that its cgroup is not
    /// writable.
    pub without_scope: Option<String>,
    /// resctl runs inside a container or a scheduler's job: when it cannot create a cgroup
    /// there, the cgroup it was given (the container's) is still read for the job's figures
    /// and limit, never written.
    pub read_enclosing: bool,
}

/// How the job is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementKind {
    /// A cgroup v2 leaf.
    V2,
    /// A cgroup in the v1 memory hierarchy.
    V1Memory,
    /// No cgroup: watched through /proc only.
    MonitorOnly {
        /// Why no cgroup could be used.
        reason: String,
    },
}

/// Why placement failed (resctl exits 125; nothing has run yet).
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The request cannot be satisfied on this host.
    #[error("{0}")]
    Unsupported(String),
}

/// The job's cgroup and what must be undone afterwards.
#[derive(Debug)]
pub struct Placement {
    kind: PlacementKind,
    job_dir: Option<PathBuf>,
    /// Monitor-only inside a container: the container's cgroup, read and never written.
    enclosing: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    supervisor: Option<SupervisorMove>,
    /// Hybrid hosts: the job's cgroup2 leaf, read for its pressure (PSI) only.
    pressure: Option<PressureLeaf>,
}

/// On a hybrid host, `<own v2 cgroup>/resctl-<pid>/job` in the cgroup2 hierarchy: no
/// controller is enabled there (the v1 memory cgroup holds the limits); it exists so that
/// the kernel keeps the job's own pressure-stall figures.
#[derive(Debug)]
struct PressureLeaf {
    run_dir: PathBuf,
    job_dir: PathBuf,
}

/// resctl moved itself out of `base` into a supervisor leaf.
#[derive(Debug)]
struct SupervisorMove {
    base: PathBuf,
    enabled_on_base: Vec<String>,
}

/// What cleanup did.
#[derive(Debug, Default)]
pub struct CleanupReport {
    /// Directories removed.
    pub removed: Vec<PathBuf>,
    /// Problems met (each names the directory).
    pub problems: Vec<String>,
}

impl Placement {
    /// Decides and creates the job's cgroup.
    pub fn prepare(
        host: &HostCgroups,
        request: &PlacementRequest,
    ) -> Result<Placement, PlacementError> {
        if request.monitor_only {
            return Ok(Self::monitor_only("monitor-only was requested"));
        }
        let run_name = format!("{CGROUP_PREFIX}{}", request.run_id);
        if let Some(parent) = &request.cgroup_parent {
            return Self::prepare_under_parent(host, parent, &run_name);
        }
        let mut placement = Self::prepare_in_own(host, request, &run_name)?;
        if matches!(placement.kind, PlacementKind::MonitorOnly { .. })
            && request.read_enclosing
            && host.layout == Layout::Unified
        {
            placement.enclosing = host.v2_own.clone();
        }
        placement.add_pressure_leaf(host, &run_name);
        Ok(placement)
    }

    /// A job in a v1 memory cgroup on a host whose cgroup2 hierarchy has PSI also gets a
    /// cgroup2 leaf for its own pressure figures. Optional: when it cannot be created the
    /// run goes on with the host's PSI, and says so.
    fn add_pressure_leaf(&mut self, host: &HostCgroups, run_name: &str) {
        if self.kind != PlacementKind::V1Memory {
            return;
        }
        let Some(own) = pressure_leaf_parent(host) else {
            tracing::debug!("no writable cgroup2 group with PSI: the host's PSI stands in");
            return;
        };
        writer::remove_stale(own, CGROUP_PREFIX);
        match create_pressure_leaf(own, run_name) {
            Ok(leaf) => self.pressure = Some(leaf),
            Err(err) => tracing::warn!(
                "no cgroup2 leaf for the job's own pressure figures ({err}); the host's PSI \
                 stands in for the job's"
            ),
        }
    }

    /// Decides and creates the job's cgroup under resctl's own.
    fn prepare_in_own(
        host: &HostCgroups,
        request: &PlacementRequest,
        run_name: &str,
    ) -> Result<Placement, PlacementError> {
        match host.layout {
            Layout::Unified => match &host.v2_own {
                Some(own) if HostCgroups::is_writable(own) => {
                    Self::prepare_v2_in_own(own, run_name)
                }
                Some(own) => Ok(Self::monitor_only(&match &request.without_scope {
                    Some(why) => format!(
                        "resctl's own cgroup {} is not writable and {why}",
                        own.display()
                    ),
                    None => format!(
                        "resctl's own cgroup {} is not writable (run as its owner, in a \
                         delegated scope with --slice, or give --cgroup-parent)",
                        own.display()
                    ),
                })),
                None => Ok(Self::monitor_only("resctl's own v2 cgroup was not found")),
            },
            Layout::Hybrid | Layout::Legacy => match &host.memory_v1_own {
                Some(own) if HostCgroups::is_writable(own) => {
                    Self::prepare_plain(own, run_name, CgroupKind::V1Memory)
                }
                Some(own) => Ok(Self::monitor_only(&format!(
                    "the v1 memory cgroup {} is not writable",
                    own.display()
                ))),
                None => Ok(Self::monitor_only(
                    "this hybrid host has no v1 memory hierarchy for resctl's process",
                )),
            },
            Layout::NoCgroups => Ok(Self::monitor_only("no cgroup filesystem is mounted")),
        }
    }

    fn monitor_only(reason: &str) -> Placement {
        Placement {
            kind: PlacementKind::MonitorOnly {
                reason: reason.to_string(),
            },
            job_dir: None,
            enclosing: None,
            run_dir: None,
            supervisor: None,
            pressure: None,
        }
    }

    fn prepare_under_parent(
        host: &HostCgroups,
        parent: &Path,
        run_name: &str,
    ) -> Result<Placement, PlacementError> {
        let (parent, kind) = host
            .resolve_dir(parent)
            .map_err(|message| PlacementError::Unsupported(format!("--cgroup-parent {message}")))?;
        if kind == CgroupKind::V2 && host.v2_own.as_deref() == Some(parent.as_path()) {
            return Self::prepare_v2_in_own(&parent, run_name);
        }
        let mut placement = Self::prepare_plain(&parent, run_name, kind)?;
        placement.add_pressure_leaf(host, run_name);
        Ok(placement)
    }

    /// `<parent>/resctl-<pid>/job`, resctl staying where it is.
    fn prepare_plain(
        parent: &Path,
        run_name: &str,
        kind: CgroupKind,
    ) -> Result<Placement, PlacementError> {
        writer::remove_stale(parent, CGROUP_PREFIX);
        let run_dir = writer::create_child(parent, run_name)?;
        let mut placement = Placement {
            kind: match kind {
                CgroupKind::V2 => PlacementKind::V2,
                CgroupKind::V1Memory => PlacementKind::V1Memory,
            },
            job_dir: None,
            enclosing: None,
            run_dir: Some(run_dir.clone()),
            supervisor: None,
            pressure: None,
        };
        if kind == CgroupKind::V2 {
            if let Err(err) = writer::enable_controllers(&run_dir, &CONTROLLERS) {
                placement.cleanup();
                return Err(err.into());
            }
        }
        match writer::create_child(&run_dir, "job") {
            Ok(job) => placement.job_dir = Some(job),
            Err(err) => {
                placement.cleanup();
                return Err(err.into());
            }
        }
        Ok(placement)
    }

    /// resctl lives in `base`: it moves itself to a supervisor leaf first when
    /// `base` must hand controllers down (no-internal-process rule).
    fn prepare_v2_in_own(base: &Path, run_name: &str) -> Result<Placement, PlacementError> {
        let missing: Vec<String> = missing_subtree_controllers(base);
        if missing.is_empty() {
            return Self::prepare_plain(base, run_name, CgroupKind::V2);
        }
        writer::remove_stale(base, CGROUP_PREFIX);
        let run_dir = writer::create_child(base, run_name)?;
        let mut placement = Placement {
            kind: PlacementKind::V2,
            job_dir: None,
            enclosing: None,
            run_dir: Some(run_dir.clone()),
            supervisor: None,
            pressure: None,
        };
        let result = (|| -> Result<PathBuf, PlacementError> {
            let supervisor = writer::create_child(&run_dir, "supervisor")?;
            writer::move_pid(&supervisor, 0)?;
            placement.supervisor = Some(SupervisorMove {
                base: base.to_path_buf(),
                enabled_on_base: Vec::new(),
            });
            let wanted: Vec<&str> = missing.iter().map(String::as_str).collect();
            writer::enable_controllers(base, &wanted).map_err(|err| {
                PlacementError::Unsupported(format!(
                    "could not enable {} for the children of {} ({err}); other processes share \
                     resctl's cgroup there: start resctl in a cgroup of its own, or give \
                     --cgroup-parent",
                    wanted.join(" "),
                    base.display()
                ))
            })?;
            if let Some(moved) = placement.supervisor.as_mut() {
                moved.enabled_on_base = missing.clone();
            }
            writer::enable_controllers(&run_dir, &CONTROLLERS)?;
            Ok(writer::create_child(&run_dir, "job")?)
        })();
        match result {
            Ok(job) => {
                placement.job_dir = Some(job);
                Ok(placement)
            }
            Err(err) => {
                placement.cleanup();
                Err(err)
            }
        }
    }

    /// How the job is placed.
    pub fn kind(&self) -> &PlacementKind {
        &self.kind
    }

    /// The job's cgroup directory, if it has one.
    pub fn job_dir(&self) -> Option<&Path> {
        self.job_dir.as_deref()
    }

    /// The job's cgroup directory and its kind, if it has one.
    pub fn job_cgroup(&self) -> Option<(PathBuf, CgroupKind)> {
        self.job_dir.clone().zip(self.cgroup_kind())
    }

    /// The cgroup whose figures are the job's: its own, or in a container where resctl
    /// could create none, the container's (read, never written; see
    /// [`Placement::enclosing_cgroup`]).
    pub fn watched_cgroup(&self) -> Option<(PathBuf, CgroupKind)> {
        self.job_cgroup()
            .or_else(|| self.enclosing.clone().map(|dir| (dir, CgroupKind::V2)))
    }

    /// Monitor-only inside a container or a scheduler's job: the cgroup resctl and the job
    /// share, which it reads (limit, memory, OOM kills, pressure) and never writes.
    pub fn enclosing_cgroup(&self) -> Option<&Path> {
        self.enclosing.as_deref()
    }

    /// The cgroup kind of the job's directory.
    pub fn cgroup_kind(&self) -> Option<CgroupKind> {
        match self.kind {
            PlacementKind::V2 => Some(CgroupKind::V2),
            PlacementKind::V1Memory => Some(CgroupKind::V1Memory),
            PlacementKind::MonitorOnly { .. } => None,
        }
    }

    /// Opens the job cgroup's `cgroup.procs` for the pre-exec move.
    pub fn open_procs(&self) -> Result<Option<(File, PathBuf)>, PlacementError> {
        match &self.job_dir {
            Some(dir) => Ok(Some((writer::open_procs_for_move(dir)?, dir.clone()))),
            None => Ok(None),
        }
    }

    /// Hybrid hosts: the job's cgroup2 leaf, whose `*.pressure` files are the job's own
    /// stalls (see [`Placement::prepare`]); `None` elsewhere, or once given up.
    pub fn pressure_cgroup(&self) -> Option<&Path> {
        self.pressure.as_ref().map(|leaf| leaf.job_dir.as_path())
    }

    /// Opens the pressure leaf's `cgroup.procs` for the pre-exec move. A leaf that cannot
    /// be opened is given up (removed, with a warning): the host's PSI stands in.
    pub fn open_pressure_procs(&mut self) -> Option<File> {
        let dir = self.pressure_cgroup()?.to_path_buf();
        match writer::open_procs_for_move(&dir) {
            Ok(file) => Some(file),
            Err(err) => {
                self.give_up_pressure_cgroup(&err.to_string());
                None
            }
        }
    }

    /// After the start: keeps the pressure leaf only if the job's process `pid` is in it, by
    /// its line in `<proc_root>/<pid>/cgroup` (the pre-exec move into the leaf is not fatal
    /// to the job, so it is checked here). A job already gone leaves the leaf as it is.
    pub fn confirm_pressure_cgroup(&mut self, proc_root: &Path, pid: i32) {
        let Some(leaf) = self.pressure_cgroup() else {
            return;
        };
        let file = proc_root.join(pid.to_string()).join("cgroup");
        let Ok(text) = std::fs::read_to_string(&file) else {
            return;
        };
        let v2_path = parse_proc_cgroup(&file, &text)
            .ok()
            .and_then(|lines| lines.into_iter().find(|line| line.hierarchy_id == 0))
            .map(|line| line.path);
        let inside = v2_path.as_deref().is_some_and(|path| {
            let relative = Path::new(path.trim_start_matches('/'));
            !relative.as_os_str().is_empty() && leaf.ends_with(relative)
        });
        if !inside {
            let why = format!(
                "the job is in {} there",
                crate::job_text::escape(v2_path.as_deref().unwrap_or("no cgroup2 group"))
            );
            self.give_up_pressure_cgroup(&why);
        }
    }

    /// Removes the pressure leaf (the job did not get into it, or it cannot be read), saying
    /// why: from then on the host's PSI stands in for the job's.
    fn give_up_pressure_cgroup(&mut self, why: &str) {
        let Some(leaf) = self.pressure.take() else {
            return;
        };
        tracing::warn!(
            "the job's cgroup2 leaf {} for its pressure figures is given up ({why}); the host's \
             PSI stands in for the job's",
            leaf.job_dir.display()
        );
        let mut report = CleanupReport::default();
        remove_pressure_leaf(leaf, &mut report);
        for problem in report.problems {
            tracing::warn!("cleanup: {problem}");
        }
    }

    /// The memory limits on the job's cgroup and on every cgroup above it (a slice's
    /// MemoryMax, a container's limit), to be re-read every tick; `None` without a cgroup.
    ///
    /// # Errors
    ///
    /// The job cgroup's own limit file cannot be opened.
    pub fn limit_chain(&self, host: &HostCgroups) -> Result<Option<LimitChain>, CgroupError> {
        let Some((dir, _)) = self.watched_cgroup() else {
            return Ok(None);
        };
        match mount_of(host, &dir) {
            Some((mount, kind)) => LimitChain::open(&dir, kind, &mount).map(Some),
            None => Ok(None),
        }
    }

    /// Sets memory.high and memory.max on the job's cgroup (v1: soft limit and limit).
    pub fn set_limits(&self, high: Option<u64>, max: Option<u64>) -> Result<(), PlacementError> {
        let (Some(dir), Some(kind)) = (&self.job_dir, self.cgroup_kind()) else {
            if high.is_some() || max.is_some() {
                let why = match &self.kind {
                    PlacementKind::MonitorOnly { reason } => format!(": {reason}"),
                    _ => String::new(),
                };
                return Err(PlacementError::Unsupported(format!(
                    "memory limits need a cgroup, and this run is monitor-only{why}"
                )));
            }
            return Ok(());
        };
        if let Some(bytes) = max {
            writer::set_memory_max(dir, kind, Some(bytes))?;
        }
        if let Some(bytes) = high {
            writer::set_memory_high(dir, kind, Some(bytes))?;
        }
        Ok(())
    }

    /// Removes what was created: the job leaf, then the run folder; undoes the
    /// supervisor move where it can. Never kills anything: a job leaf that
    /// still holds processes (the job's orphans) is left and reported.
    pub fn cleanup(&mut self) -> CleanupReport {
        let mut report = CleanupReport::default();
        if let Some(job) = self.job_dir.take() {
            match writer::remove(&job) {
                Ok(()) => report.removed.push(job),
                Err(err) => report
                    .problems
                    .push(format!("{}: {err} ({LEFT_BEHIND})", job.display())),
            }
        }
        if let (Some(moved), Some(run_dir)) = (self.supervisor.take(), self.run_dir.as_ref()) {
            if let Err(problem) = undo_supervisor_move(&moved, run_dir) {
                report.problems.push(problem);
            }
        }
        if let Some(run_dir) = self.run_dir.take() {
            if report.problems.is_empty() {
                match writer::remove(&run_dir) {
                    Ok(()) => report.removed.push(run_dir),
                    Err(err) => report
                        .problems
                        .push(format!("{}: {err}", run_dir.display())),
                }
            }
        }
        if let Some(leaf) = self.pressure.take() {
            remove_pressure_leaf(leaf, &mut report);
        }
        report
    }
}

/// Where a job placed in the v1 memory hierarchy gets its cgroup2 leaf for its own pressure
/// figures: resctl's own cgroup2 group on a hybrid host whose cgroup2 keeps PSI, when resctl
/// may create groups there; `None` elsewhere (the host's PSI stands in).
pub fn pressure_leaf_parent(host: &HostCgroups) -> Option<&Path> {
    if host.layout != Layout::Hybrid || !host.psi {
        return None;
    }
    host.v2_own
        .as_deref()
        .filter(|own| HostCgroups::is_writable(own))
}

/// `<own>/<run_name>/job` in the cgroup2 hierarchy, no controller enabled; what was created
/// is removed again on failure.
fn create_pressure_leaf(own: &Path, run_name: &str) -> Result<PressureLeaf, CgroupError> {
    let run_dir = writer::create_child(own, run_name)?;
    match writer::create_child(&run_dir, "job") {
        Ok(job_dir) => Ok(PressureLeaf { run_dir, job_dir }),
        Err(err) => {
            if let Err(problem) = writer::remove(&run_dir) {
                tracing::warn!("cleanup: {problem}");
            }
            Err(err)
        }
    }
}

/// Removes a pressure leaf, then its run folder, into `report`: each folder removed, or the
/// problem met naming it. Like the job's cgroup, a leaf still holding the job's orphans is
/// left for the next run, and its run folder with it.
fn remove_pressure_leaf(leaf: PressureLeaf, report: &mut CleanupReport) {
    if let Err(err) = writer::remove(&leaf.job_dir) {
        report
            .problems
            .push(format!("{}: {err} ({LEFT_BEHIND})", leaf.job_dir.display()));
        return;
    }
    report.removed.push(leaf.job_dir);
    match writer::remove(&leaf.run_dir) {
        Ok(()) => report.removed.push(leaf.run_dir),
        Err(err) => report
            .problems
            .push(format!("{}: {err}", leaf.run_dir.display())),
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let report = self.cleanup();
        for problem in report.problems {
            tracing::warn!("cleanup: {problem}");
        }
    }
}

fn undo_supervisor_move(moved: &SupervisorMove, run_dir: &Path) -> Result<(), String> {
    // Controllers enabled on the run folder block disabling them on the base.
    let _ = writer::disable_controllers(run_dir, &CONTROLLERS);
    if !moved.enabled_on_base.is_empty() {
        let names: Vec<&str> = moved.enabled_on_base.iter().map(String::as_str).collect();
        writer::disable_controllers(&moved.base, &names).map_err(|err| {
            format!(
                "{}: could not disable the controllers resctl enabled ({err}); resctl stays in {}",
                moved.base.display(),
                run_dir.join("supervisor").display()
            )
        })?;
    }
    writer::move_pid(&moved.base, 0).map_err(|err| {
        format!(
            "could not move resctl back to {} ({err}); {} is removed by the next run",
            moved.base.display(),
            run_dir.display()
        )
    })
}

/// Controllers resctl wants that `dir` offers but does not yet hand to its children.
fn missing_subtree_controllers(dir: &Path) -> Vec<String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let available = read("cgroup.controllers");
    let enabled = read("cgroup.subtree_control");
    CONTROLLERS
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| c.to_string())
        .collect()
}

/// Which hierarchy a directory belongs to, by the mounts detection found.
fn kind_of_dir(host: &HostCgroups, dir: &Path) -> Option<CgroupKind> {
    if let Some(mount) = &host.memory_v1_mount {
        if dir.starts_with(mount) {
            return Some(CgroupKind::V1Memory);
        }
    }
    match &host.v2_mount {
        Some(mount) if dir.starts_with(mount) => Some(CgroupKind::V2),
        _ => None,
    }
}

/// The cgroup a job that `resctl run` starts now would be created under, its kind and its
/// hierarchy's mount, before any cgroup exists: `cgroup_parent` when given; on a systemd v2
/// host the `slice` (its nearest existing cgroup: systemd creates slices on demand);
/// otherwise resctl's own cgroup. `None` where the run would be monitor-only.
pub fn parent_for_new_job(
    host: &HostCgroups,
    cgroup_parent: Option<&Path>,
    slice: &str,
    systemd: bool,
) -> Option<(PathBuf, CgroupKind, PathBuf)> {
    let parent = match cgroup_parent {
        Some(parent) => host.resolve_dir(parent).ok()?.0,
        None => match host.layout {
            Layout::Unified if systemd => {
                let mount = host.v2_mount.as_ref()?;
                let slice_dir = mount.join(slice_path(slice));
                slice_dir
                    .ancestors()
                    .find(|dir| dir.is_dir())
                    .unwrap_or(mount)
                    .to_path_buf()
            }
            Layout::Unified => host.v2_own.clone()?,
            Layout::Hybrid | Layout::Legacy => host.memory_v1_own.clone()?,
            Layout::NoCgroups => return None,
        },
    };
    let (mount, kind) = mount_of(host, &parent)?;
    Some((parent, kind, mount))
}

/// Where systemd puts the slice unit `name` in the cgroup tree: `a-b.slice` lives in
/// `a.slice/a-b.slice`, `-.slice` is the root.
pub fn slice_path(name: &str) -> PathBuf {
    let stem = name.strip_suffix(".slice").unwrap_or(name);
    let mut path = PathBuf::new();
    if stem.is_empty() || stem == "-" {
        return path;
    }
    let parts: Vec<&str> = stem.split('-').collect();
    for end in 1..=parts.len() {
        path.push(format!("{}.slice", parts[..end].join("-")));
    }
    path
}

/// The mount of the hierarchy `dir` belongs to, and its kind.
fn mount_of(host: &HostCgroups, dir: &Path) -> Option<(PathBuf, CgroupKind)> {
    let kind = kind_of_dir(host, dir)?;
    let mount = match kind {
        CgroupKind::V2 => host.v2_mount.clone()?,
        CgroupKind::V1Memory => host.memory_v1_mount.clone()?,
    };
    Some((mount, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hybrid host on plain folders under `root`: the v1 memory hierarchy at `memory/`
    /// (resctl in `memory/own`), cgroup2 at `unified/` (resctl at its root).
    fn hybrid_host(root: &Path, psi: bool) -> HostCgroups {
        std::fs::create_dir_all(root.join("memory/own")).unwrap();
        std::fs::create_dir_all(root.join("unified")).unwrap();
        HostCgroups {
            layout: Layout::Hybrid,
            v2_mount: Some(root.join("unified")),
            v2_own: Some(root.join("unified")),
            v2_controllers: Vec::new(),
            memory_v1_mount: Some(root.join("memory")),
            memory_v1_own: Some(root.join("memory/own")),
            psi,
            v2_enclosed: false,
        }
    }

    const RUN: PlacementRequest = PlacementRequest {
        cgroup_parent: None,
        monitor_only: false,
        run_id: 4242,
        without_scope: None,
        read_enclosing: false,
    };

    #[test]
    fn a_hybrid_job_gets_a_cgroup2_leaf_for_its_pressure_where_cgroup2_keeps_psi() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let mut placement = Placement::prepare(&hybrid_host(root, true), &RUN).unwrap();
        assert_eq!(placement.kind(), &PlacementKind::V1Memory);
        let leaf = root.join("unified/resctl-4242/job");
        assert_eq!(placement.pressure_cgroup(), Some(leaf.as_path()));
        assert!(leaf.is_dir());
        let report = placement.cleanup();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.removed.contains(&leaf), "{:?}", report.removed);
        assert!(!root.join("unified/resctl-4242").exists());
        assert!(!root.join("memory/own/resctl-4242").exists());

        let placement = Placement::prepare(&hybrid_host(root, false), &RUN).unwrap();
        assert_eq!(placement.pressure_cgroup(), None, "no PSI: no leaf");
        assert!(!root.join("unified/resctl-4242").exists());
    }

    #[test]
    fn the_leaf_is_kept_only_when_the_job_got_into_it() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let proc_root = root.join("proc");
        for (pid, text) in [
            (77, "4:memory:/own/resctl-4242/job\n0::/resctl-4242/job\n"),
            (78, "4:memory:/own/resctl-4242/job\n0::/\n"),
        ] {
            std::fs::create_dir_all(proc_root.join(pid.to_string())).unwrap();
            std::fs::write(proc_root.join(format!("{pid}/cgroup")), text).unwrap();
        }
        let mut placement = Placement::prepare(&hybrid_host(root, true), &RUN).unwrap();
        let leaf = root.join("unified/resctl-4242/job");
        placement.confirm_pressure_cgroup(&proc_root, 77);
        assert_eq!(placement.pressure_cgroup(), Some(leaf.as_path()), "in it");
        placement.confirm_pressure_cgroup(&proc_root, 79);
        assert_eq!(
            placement.pressure_cgroup(),
            Some(leaf.as_path()),
            "a job already gone says nothing"
        );
        placement.confirm_pressure_cgroup(&proc_root, 78);
        assert_eq!(placement.pressure_cgroup(), None, "not in it: given up");
        assert!(!root.join("unified/resctl-4242").exists(), "and removed");
        assert!(
            root.join("memory/own/resctl-4242/job").is_dir(),
            "the job's own stays"
        );
    }

    #[test]
    fn slices_nest_by_their_dashes_like_systemd() {
        assert_eq!(slice_path("resctl.slice"), PathBuf::from("resctl.slice"));
        assert_eq!(
            slice_path("batch-etl.slice"),
            PathBuf::from("batch.slice/batch-etl.slice")
        );
        assert_eq!(slice_path("-.slice"), PathBuf::new());
    }

    #[test]
    fn a_new_job_under_a_missing_slice_sits_under_its_nearest_existing_cgroup() {
        let mount = tempfile::tempdir().unwrap();
        std::fs::create_dir(mount.path().join("batch.slice")).unwrap();
        let host = HostCgroups {
            layout: Layout::Unified,
            v2_mount: Some(mount.path().to_path_buf()),
            v2_own: Some(mount.path().join("user.slice")),
            v2_controllers: Vec::new(),
            memory_v1_mount: None,
            memory_v1_own: None,
            psi: false,
            v2_enclosed: false,
        };
        let (parent, kind, root) =
            parent_for_new_job(&host, None, "batch-etl.slice", true).unwrap();
        assert_eq!(parent, mount.path().join("batch.slice"));
        assert_eq!((kind, root.as_path()), (CgroupKind::V2, mount.path()));
        let (parent, ..) = parent_for_new_job(&host, None, "batch-etl.slice", false).unwrap();
        assert_eq!(
            parent,
            mount.path().join("user.slice"),
            "no systemd: own cgroup"
        );
        let none = HostCgroups {
            layout: Layout::NoCgroups,
            v2_mount: None,
            ..host
        };
        assert!(parent_for_new_job(&none, None, "resctl.slice", true).is_none());
    }
}
