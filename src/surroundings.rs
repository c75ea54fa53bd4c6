//! Where resctl runs, as `resctl doctor` names it and as `resctl run` takes it into account:
//! inside a container (a Kubernetes pod, Docker, Podman, or any cgroup namespace), inside a
//! batch scheduler's job (Slurm), or on a host of its own; and whether the cgroup
//! filesystem is read-only there.
//!
//! Inside a container or a job, the cgroup resctl finds itself in is the container's or the
//! job's: its memory limit is the budget, and when resctl may not create cgroups below it
//! (a read-only cgroupfs, a tree it was not given) it still reads that cgroup's figures —
//! memory, OOM kills, pressure — while it steers the job through its channels only.
//!
//! The facts are a few environment variables and marker files under an injectable root
//! ([`Markers::read`]); [`classify`] is pure.

use std::path::Path;

use crate::cgroup::detect::HostCgroups;

/// What the environment and the file system say about resctl's surroundings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markers {
    /// `KUBERNETES_SERVICE_HOST` is set (every pod's containers get it).
    pub kubernetes: bool,
    /// `/.dockerenv` exists (Docker creates it in every container).
    pub dockerenv: bool,
    /// `/run/.containerenv` exists (Podman creates it).
    pub containerenv: bool,
    /// The `container` variable (systemd-nspawn, LXC, Podman set it), as given.
    pub container_variable: Option<String>,
    /// `SLURM_JOB_ID`, when set.
    pub slurm_job: Option<String>,
    /// `SLURM_STEP_ID`, when set.
    pub slurm_step: Option<String>,
}

/// Longest marker value kept (they come from the environment a job was started with).
const MAX_MARKER_CHARS: usize = 64;

impl Markers {
    /// Reads the markers: environment variables, and marker files under `root` (`/` on a
    /// real system).
    pub fn read(root: &Path) -> Markers {
        let variable = |name: &str| {
            std::env::var_os(name)
                .map(|value| {
                    value
                        .to_string_lossy()
                        .chars()
                        .take(MAX_MARKER_CHARS)
                        .collect()
                })
                .filter(|value: &String| !value.is_empty())
        };
        Markers {
            kubernetes: variable("KUBERNETES_SERVICE_HOST").is_some(),
            dockerenv: root.join(".dockerenv").exists(),
            containerenv: root.join("run/.containerenv").exists(),
            container_variable: variable("container"),
            slurm_job: variable("SLURM_JOB_ID"),
            slurm_step: variable("SLURM_STEP_ID"),
        }
    }
}

/// What encloses resctl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enclosure {
    /// A host of its own (or nothing says otherwise).
    Host,
    /// A container; the text names the kind ("Kubernetes pod", "Docker container", ...).
    Container(String),
    /// A batch scheduler's job; the text names it ("Slurm job 42, step 0").
    SchedulerJob(String),
}

/// Where resctl runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surroundings {
    /// What encloses it.
    pub enclosure: Enclosure,
    /// Its cgroup is the root of a cgroup namespace (or of a subtree a container runtime
    /// mounted), not the host's root.
    pub cgroup_namespace: bool,
    /// The cgroup2 file system is mounted read-only here.
    pub cgroupfs_read_only: bool,
}

/// Names the enclosure from the markers; `cgroup_namespace` alone makes a container.
pub fn classify(markers: &Markers, cgroup_namespace: bool) -> Enclosure {
    if let Some(job) = &markers.slurm_job {
        let step = markers
            .slurm_step
            .as_deref()
            .map(|step| format!(", step {step}"))
            .unwrap_or_default();
        return Enclosure::SchedulerJob(crate::job_text::escape(&format!("Slurm job {job}{step}")));
    }
    let kind = if markers.kubernetes {
        Some("Kubernetes pod".to_string())
    } else if markers.containerenv {
        Some("Podman container".to_string())
    } else if markers.dockerenv {
        Some("Docker container".to_string())
    } else if let Some(name) = &markers.container_variable {
        Some(format!("{} container", crate::job_text::escape(name)))
    } else if cgroup_namespace {
        Some("container".to_string())
    } else {
        None
    };
    kind.map_or(Enclosure::Host, Enclosure::Container)
}

impl Surroundings {
    /// Looks around: markers under `root` and the environment, and the host's cgroups.
    pub fn gather(root: &Path, host: &HostCgroups) -> Surroundings {
        let cgroupfs_read_only = host.v2_mount.as_deref().is_some_and(|mount| {
            nix::sys::statvfs::statvfs(mount)
                .is_ok_and(|stat| stat.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        });
        Surroundings {
            enclosure: classify(&Markers::read(root), host.v2_enclosed),
            cgroup_namespace: host.v2_enclosed,
            cgroupfs_read_only,
        }
    }

    /// True inside a container or a scheduler's job: resctl's own cgroup is the
    /// container's or the job's, so its limit and figures are the job's too, and no
    /// systemd scope may take resctl out of it.
    pub fn enclosed(&self) -> bool {
        self.cgroup_namespace || self.enclosure != Enclosure::Host
    }

    /// One line for `doctor`.
    pub fn describe(&self) -> String {
        let what = match &self.enclosure {
            Enclosure::Host if self.cgroup_namespace => "a cgroup namespace".to_string(),
            Enclosure::Host => "a host of its own".to_string(),
            Enclosure::Container(kind) | Enclosure::SchedulerJob(kind) => kind.clone(),
        };
        let namespace = if self.cgroup_namespace && self.enclosure != Enclosure::Host {
            ", in a cgroup namespace"
        } else {
            ""
        };
        let read_only = if self.cgroupfs_read_only {
            ", cgroupfs read-only"
        } else {
            ""
        };
        format!("{what}{namespace}{read_only}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_the_container_or_the_job_and_a_namespace_alone_is_a_container() {
        let none = Markers::default();
        assert_eq!(classify(&none, false), Enclosure::Host);
        assert_eq!(
            classify(&none, true),
            Enclosure::Container("container".into())
        );
        let pod = Markers {
            kubernetes: true,
            dockerenv: true,
            ..Markers::default()
        };
        assert_eq!(
            classify(&pod, true),
            Enclosure::Container("Kubernetes pod".into())
        );
        let podman = Markers {
            containerenv: true,
            container_variable: Some("podman".into()),
            ..Markers::default()
        };
        assert_eq!(
            classify(&podman, false),
            Enclosure::Container("Podman container".into())
        );
        let nspawn = Markers {
            container_variable: Some("systemd-nspawn".into()),
            ..Markers::default()
        };
        assert_eq!(
            classify(&nspawn, false),
            Enclosure::Container("systemd-nspawn container".into())
        );
        let slurm = Markers {
            slurm_job: Some("42".into()),
            slurm_step: Some("0".into()),
            dockerenv: true,
            ..Markers::default()
        };
        assert_eq!(
            classify(&slurm, false),
            Enclosure::SchedulerJob("Slurm job 42, step 0".into())
        );
    }

    #[test]
    fn a_hostile_marker_is_escaped() {
        let markers = Markers {
            container_variable: Some("x\n\u{1b}]0;pwned\u{7}".into()),
            ..Markers::default()
        };
        let Enclosure::Container(kind) = classify(&markers, false) else {
            panic!("not a container")
        };
        assert!(!kind.contains('\n') && !kind.contains('\u{1b}'), "{kind:?}");
    }

    #[test]
    fn the_description_says_namespace_and_read_only() {
        let surroundings = Surroundings {
            enclosure: Enclosure::Container("container".into()),
            cgroup_namespace: true,
            cgroupfs_read_only: true,
        };
        assert_eq!(
            surroundings.describe(),
            "container, in a cgroup namespace, cgroupfs read-only"
        );
        assert!(surroundings.enclosed());
        let host = Surroundings {
            enclosure: Enclosure::Host,
            cgroup_namespace: false,
            cgroupfs_read_only: false,
        };
        assert_eq!(host.describe(), "a host of its own");
        assert!(!host.enclosed());
    }

    #[test]
    fn markers_are_read_from_the_root_given() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(".dockerenv"), "").unwrap();
        let markers = Markers::read(root.path());
        assert!(markers.dockerenv && !markers.containerenv);
    }
}
