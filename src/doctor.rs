//! `resctl doctor`: what this host offers and what `resctl run` will do here.

use std::path::Path;

use serde::Serialize;

use crate::cgroup::detect::{detect, HostCgroups, Layout};
use crate::cgroup::parse::parse_word_list;
use crate::config::explain::Explanation;
use crate::report::logging::JOURNALD_SOCKET;
use crate::run::protect::ProtectionCheck;
use crate::run::scope::{systemd_running, Manager};
use crate::surroundings::Surroundings;

/// The findings, as printed (text or JSON).
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// `v2`, `hybrid`, `v1` or `none`.
    pub layout: String,
    /// The cgroup2 mount point, if any.
    pub v2_mount: Option<String>,
    /// resctl's own v2 cgroup.
    pub v2_cgroup: Option<String>,
    /// Controllers available in that cgroup.
    pub v2_controllers: Vec<String>,
    /// Whether resctl may create cgroups there.
    pub v2_writable: bool,
    /// The v1 memory hierarchy's mount, if any.
    pub memory_v1_mount: Option<String>,
    /// resctl's own v1 memory cgroup.
    pub memory_v1_cgroup: Option<String>,
    /// Whether resctl may create cgroups there.
    pub memory_v1_writable: bool,
    /// Pressure stall information readable for the job.
    pub psi: bool,
    /// Host PSI files (/proc/pressure) exist.
    pub host_psi: bool,
    /// systemd is PID 1.
    pub systemd: bool,
    /// journald's socket exists.
    pub journald: bool,
    /// Inside a container or a scheduler's job, or on a host of its own; whether cgroupfs is
    /// read-only.
    pub surroundings: String,
    /// Without root on a systemd host: the controllers the system delegates to this
    /// user's manager (`user@UID.service`), which a job of this user can be limited by.
    pub user_delegated_controllers: Option<Vec<String>>,
    /// What `resctl run` will do on this host.
    pub plan: String,
    /// How resctl can protect itself when the host is short of memory.
    pub self_protection: ProtectionCheck,
    /// The budget, levels and thread bounds of a job started here now, with their sources
    /// (set by [`DoctorReport::with_budget`]).
    pub budget: Option<Explanation>,
    /// Why the budget could not be resolved, if it could not.
    pub budget_error: Option<String>,
}

impl DoctorReport {
    /// Inspects the host (proc and sys roots are parameters for tests).
    pub fn gather(proc_root: &Path, sys_root: &Path) -> Result<Self, String> {
        let host = detect(proc_root, sys_root).map_err(|err| err.to_string())?;
        let systemd = systemd_running();
        let journald = Path::new(JOURNALD_SOCKET).exists();
        let v2_writable = host.v2_own.as_deref().is_some_and(HostCgroups::is_writable);
        let memory_v1_writable = host
            .memory_v1_own
            .as_deref()
            .is_some_and(HostCgroups::is_writable);
        let surroundings = Surroundings::gather(Path::new("/"), &host);
        // Inside a container or a job resctl never asks for a scope (see run::setup).
        let manager = (systemd && !surroundings.enclosed()).then(Manager::for_this_process);
        let user_delegated_controllers = match (&manager, &host.v2_mount) {
            (Some(Ok(Manager::User { .. })), Some(mount)) => {
                Some(user_manager_controllers(mount, nix::unistd::geteuid()))
            }
            _ => None,
        };
        let plan = plan(
            &host,
            &surroundings,
            manager.as_ref(),
            user_delegated_controllers.as_deref(),
            v2_writable,
            memory_v1_writable,
        );
        Ok(DoctorReport {
            layout: match host.layout {
                Layout::Unified => "v2",
                Layout::Hybrid => "hybrid",
                Layout::Legacy => "v1",
                Layout::NoCgroups => "none",
            }
            .to_string(),
            v2_mount: host.v2_mount.as_ref().map(|p| p.display().to_string()),
            v2_cgroup: host.v2_own.as_ref().map(|p| p.display().to_string()),
            v2_controllers: host.v2_controllers.clone(),
            v2_writable,
            memory_v1_mount: host
                .memory_v1_mount
                .as_ref()
                .map(|p| p.display().to_string()),
            memory_v1_cgroup: host.memory_v1_own.as_ref().map(|p| p.display().to_string()),
            memory_v1_writable,
            // cgroup v2 gives a job its own pressure figures; a hybrid host does through
            // the cgroup2 leaf beside a writable v1 memory cgroup.
            psi: host.psi
                && (host.layout == Layout::Unified
                    || (memory_v1_writable
                        && crate::placement::pressure_leaf_parent(&host).is_some())),
            host_psi: proc_root.join("pressure/memory").exists(),
            systemd,
            journald,
            surroundings: surroundings.describe(),
            user_delegated_controllers,
            plan,
            self_protection: ProtectionCheck::gather(proc_root),
            budget: None,
            budget_error: None,
        })
    }

    /// Adds what a job started here now would get (or why that is unknown).
    pub fn with_budget(mut self, budget: Result<Explanation, String>) -> Self {
        match budget {
            Ok(explanation) => self.budget = Some(explanation),
            Err(message) => self.budget_error = Some(message),
        }
        self
    }

    /// Human-readable lines.
    pub fn render(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let none = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_string());
        let mut out = String::new();
        out.push_str(&format!("cgroup layout:      {}\n", self.layout));
        out.push_str(&format!("cgroup2 mount:      {}\n", none(&self.v2_mount)));
        out.push_str(&format!(
            "own v2 cgroup:      {} (writable: {})\n",
            none(&self.v2_cgroup),
            yes_no(self.v2_writable)
        ));
        out.push_str(&format!(
            "v2 controllers:     {}\n",
            if self.v2_controllers.is_empty() {
                "-".to_string()
            } else {
                self.v2_controllers.join(" ")
            }
        ));
        out.push_str(&format!(
            "v1 memory mount:    {}\n",
            none(&self.memory_v1_mount)
        ));
        out.push_str(&format!(
            "own v1 memory:      {} (writable: {})\n",
            none(&self.memory_v1_cgroup),
            yes_no(self.memory_v1_writable)
        ));
        out.push_str(&format!("PSI for the job:    {}\n", yes_no(self.psi)));
        out.push_str(&format!("host PSI:           {}\n", yes_no(self.host_psi)));
        out.push_str(&format!("systemd:            {}\n", yes_no(self.systemd)));
        out.push_str(&format!("journald:           {}\n", yes_no(self.journald)));
        out.push_str(&format!("running in:         {}\n", self.surroundings));
        if let Some(controllers) = &self.user_delegated_controllers {
            out.push_str(&format!(
                "your manager gets: {}\n",
                if controllers.is_empty() {
                    "no controllers (the job cannot be limited)".to_string()
                } else {
                    controllers.join(" ")
                }
            ));
        }
        out.push_str(&format!("resctl run will:    {}\n", self.plan));
        out.push_str(&format!(
            "self-protection:    {}\n",
            self.self_protection.describe()
        ));
        match (&self.budget, &self.budget_error) {
            (Some(explanation), _) => {
                out.push_str("a job started now:  (resctl config show --resolved)\n");
                for line in explanation.render().lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            (None, Some(message)) => {
                out.push_str(&format!("a job started now:  unknown: {message}\n"));
            }
            (None, None) => {}
        }
        out
    }
}

/// The controllers systemd delegates to `uid`'s manager: `cgroup.controllers` of
/// `user.slice/user-UID.slice/user@UID.service` under the cgroup2 `mount` (empty when that
/// cannot be read).
fn user_manager_controllers(mount: &Path, uid: nix::unistd::Uid) -> Vec<String> {
    let path = mount.join(format!(
        "user.slice/user-{uid}.slice/user@{uid}.service/cgroup.controllers"
    ));
    std::fs::read_to_string(path)
        .map(|text| parse_word_list(&text))
        .unwrap_or_default()
}

/// What `resctl run` will do, given the host, the systemd manager it would ask for a
/// scope (`None` without systemd) and whether its own cgroups are writable.
fn plan(
    host: &HostCgroups,
    surroundings: &Surroundings,
    manager: Option<&Result<Manager, String>>,
    user_controllers: Option<&[String]>,
    v2_writable: bool,
    v1_writable: bool,
) -> String {
    const IN_SCOPE: &str = "(--slice, default resctl.slice), move itself to a `supervisor` leaf \
        there and put the job in a `job` leaf with its limits";
    let own = host
        .v2_own
        .as_deref()
        .map_or_else(|| "-".into(), |dir| dir.display().to_string());
    match (host.layout, manager) {
        (Layout::Unified, _) if surroundings.enclosed() && v2_writable => format!(
            "stay in the cgroup it was given ({own}, inside a {}): create \
             <own cgroup>/resctl-<pid>/job there with its limits; the enclosing limit is the \
             budget",
            surroundings.describe()
        ),
        (Layout::Unified, _) if surroundings.enclosed() => format!(
            "run monitor-only inside a {} (its cgroup {own} is not writable): the enclosing \
             limit is the budget, that cgroup's memory, OOM kills and pressure are read, the \
             job is steered through its channels only (no memory.high or reclaim)",
            surroundings.describe()
        ),
        (Layout::Unified, Some(Ok(Manager::System))) => format!(
            "ask systemd (systemd-run --scope, Delegate=yes) for a scope in the slice {IN_SCOPE} \
             (memory.high, memory.max, memory.reclaim, PSI)"
        ),
        (Layout::Unified, Some(Ok(Manager::User { .. }))) => format!(
            "ask your systemd user manager (systemd-run --user --scope, Delegate=yes) for a scope \
             in the slice {IN_SCOPE}, with the controllers it is given: {}",
            match user_controllers {
                Some(list) if !list.is_empty() => list.join(" "),
                _ => "none (an administrator adds them with a Delegate= drop-in for \
                      user@.service)"
                    .to_string(),
            }
        ),
        (Layout::Unified, Some(Err(reason))) if !v2_writable => {
            format!("run monitor-only: its own cgroup is not writable and {reason}")
        }
        _ => plan_without_systemd(host, v2_writable, v1_writable),
    }
}

/// What `resctl run` will do where no systemd manager gives it a scope.
fn plan_without_systemd(host: &HostCgroups, v2_writable: bool, v1_writable: bool) -> String {
    match host.layout {
        Layout::Unified if v2_writable => "create <own cgroup>/resctl-<pid>/job (moving itself to a supervisor \
             leaf if the no-internal-process rule demands) with memory.high/memory.max/memory.reclaim and PSI"
            .to_string(),
        Layout::Unified => "run monitor-only: its own cgroup is not writable (give --cgroup-parent a delegated \
             subtree)"
            .to_string(),
        Layout::Hybrid | Layout::Legacy if v1_writable => {
            let pressure = if crate::placement::pressure_leaf_parent(host).is_some() {
                "the job's own PSI from a cgroup2 leaf, <own cgroup2 group>/resctl-<pid>/job, which holds it \
                 with no controller"
            } else {
                "no per-cgroup PSI (the host's PSI stands in for the job's)"
            };
            format!(
                "use the v1 memory hierarchy: <own memory cgroup>/resctl-<pid>/job with memory.limit_in_bytes \
                 (--memory-max); no memory.high throttling and no memory.reclaim on v1; {pressure}"
            )
        }
        Layout::Hybrid | Layout::Legacy => "run monitor-only: the v1 memory cgroup is not writable".to_string(),
        Layout::NoCgroups => "run monitor-only: no cgroup filesystem is mounted".to_string(),
    }
}
