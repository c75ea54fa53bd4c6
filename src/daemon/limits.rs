//! A slice's `limits:` held through systemd: `MemoryHigh=`/`MemoryMax=` set as runtime
//! unit properties over D-Bus (systemd writes the cgroup files; resctl never writes the
//! files of units systemd owns). The values systemd had before resctl changed a slice are
//! kept, and a slice that leaves the configuration (or loses its limits) gets them back.
//!
//! They are kept in the daemon's runtime folder too ([`STATE_FILE`]): a restarted daemon
//! reads systemd's values *with* its predecessor's runtime properties in them, and would
//! otherwise take those for the slice's own. Runtime properties and `/run` both end at
//! reboot, so the file lives exactly as long as what it describes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::safe_fs::{owned_and_private, read_regular, Folder};

use crate::run::scope::systemd_running;
use crate::systemd::manager::{set_slice_memory, slice_memory, Bus, MemoryProperties};
use crate::units::format_size;

/// `memory.high` and `memory.max` a slice's configuration asks for, bytes.
pub type WantedLimits = (Option<u64>, Option<u64>);

/// The file in the daemon's runtime folder that keeps the values to give back.
pub const STATE_FILE: &str = "slice-limits.json";
/// Largest state file read, bytes (a few hundred bytes per slice).
const MAX_STATE_BYTES: u64 = 1 << 20;

/// What [`STATE_FILE`] holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// Per slice: `MemoryHigh=` and `MemoryMax=` before resctl's first change.
    saved: BTreeMap<String, (u64, u64)>,
    /// Per slice: what resctl set last.
    set: BTreeMap<String, WantedLimits>,
}

/// What was done (or could not be done) to one slice's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOutcome {
    /// The slice.
    pub slice: String,
    /// What, in words.
    pub what: String,
}

/// The limits resctl set on slices, and the values to give back.
#[derive(Debug, Default)]
pub struct SliceLimits {
    /// What systemd had before resctl's first change, per slice.
    saved: BTreeMap<String, MemoryProperties>,
    /// What resctl set last, per slice.
    set: BTreeMap<String, WantedLimits>,
    /// Said once: without systemd no limit is set.
    warned_no_systemd: bool,
    /// The daemon's runtime folder, where [`STATE_FILE`] is kept (`None`: memory only).
    folder: Option<Folder>,
}

impl SliceLimits {
    /// Nothing set yet, and nothing kept across restarts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The limits an earlier daemon left in `runtime_dir` (created 0755 when missing), and
    /// a warning when the folder cannot be used (it must belong to this user and be
    /// writable by no one else) or the file cannot be read: the values are then kept in
    /// memory only, and a restarted daemon may give a slice back its predecessor's limits.
    pub fn open(runtime_dir: &Path) -> (SliceLimits, Option<String>) {
        let mut limits = SliceLimits::new();
        let folder = match open_private(runtime_dir) {
            Ok(folder) => folder,
            Err(err) => {
                return (
                    limits,
                    Some(format!(
                        "{}: {err}; the slices' own limits are kept in memory only",
                        runtime_dir.display()
                    )),
                )
            }
        };
        let path = folder.path().join(STATE_FILE);
        let warning = match read_regular(&path, MAX_STATE_BYTES) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(stored) => {
                    limits.saved = stored
                        .saved
                        .into_iter()
                        .map(|(slice, (high, max))| (slice, MemoryProperties { high, max }))
                        .collect();
                    limits.set = stored.set;
                    None
                }
                Err(err) => Some(format!(
                    "{}: ignored ({err}); slices are given back what systemd has now",
                    path.display()
                )),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => Some(format!("{err}; slices are given back what systemd has now")),
        };
        limits.folder = Some(folder);
        (limits, warning)
    }

    /// Writes what must survive a restart; a failure is logged, never fatal.
    fn keep(&self) {
        let Some(folder) = &self.folder else { return };
        let stored = Stored {
            saved: self
                .saved
                .iter()
                .map(|(slice, memory)| (slice.clone(), (memory.high, memory.max)))
                .collect(),
            set: self.set.clone(),
        };
        let written = serde_json::to_vec(&stored)
            .map_err(std::io::Error::other)
            .and_then(|json| folder.replace(OsStr::new(STATE_FILE), &json, 0o600, None));
        if let Err(err) = written {
            tracing::warn!(
                "{}: could not keep the slices' own limits: {err}",
                folder.path().join(STATE_FILE).display()
            );
        }
    }

    /// Brings every slice to `wanted` (slices absent from it, or wanting no limit, get
    /// their own values back); one outcome per change made or refused.
    pub fn apply(
        &mut self,
        wanted: &BTreeMap<String, WantedLimits>,
    ) -> Vec<Result<LimitOutcome, LimitOutcome>> {
        let mut outcomes = Vec::new();
        let asked: BTreeMap<&String, &WantedLimits> = wanted
            .iter()
            .filter(|(_, (high, max))| high.is_some() || max.is_some())
            .collect();
        if !asked.is_empty() && !systemd_running() {
            if !self.warned_no_systemd {
                self.warned_no_systemd = true;
                for slice in asked.keys() {
                    outcomes.push(Err(LimitOutcome {
                        slice: (*slice).clone(),
                        what: "limits not set: they are set through systemd, which does not \
                               run here"
                            .to_owned(),
                    }));
                }
            }
            return outcomes;
        }
        let bus = Bus::System;
        for (slice, limits) in asked {
            if self.set.get(slice) == Some(limits) {
                continue;
            }
            outcomes.push(self.set_one(&bus, slice, *limits));
        }
        let released: Vec<String> = self
            .set
            .keys()
            .filter(|slice| {
                !wanted
                    .get(*slice)
                    .is_some_and(|(h, m)| h.is_some() || m.is_some())
            })
            .cloned()
            .collect();
        for slice in released {
            outcomes.push(self.give_back(&bus, &slice));
        }
        if !outcomes.is_empty() {
            self.keep();
        }
        outcomes
    }

    fn set_one(
        &mut self,
        bus: &Bus,
        slice: &str,
        (high, max): WantedLimits,
    ) -> Result<LimitOutcome, LimitOutcome> {
        let outcome = |what: String| LimitOutcome {
            slice: slice.to_owned(),
            what,
        };
        let original = match self.saved.get(slice) {
            Some(saved) => *saved,
            None => {
                let read = slice_memory(bus, slice).map_err(|err| {
                    outcome(format!(
                        "limits not set: could not read the slice's own: {err}"
                    ))
                })?;
                self.saved.insert(slice.to_owned(), read);
                read
            }
        };
        let target = MemoryProperties {
            high: high.unwrap_or(original.high),
            max: max.unwrap_or(original.max),
        };
        set_slice_memory(bus, slice, target)
            .map_err(|err| outcome(format!("limits not set: {err}")))?;
        self.set.insert(slice.to_owned(), (high, max));
        Ok(outcome(format!(
            "{} (runtime; the unit's own: {})",
            describe(target),
            describe(original)
        )))
    }

    fn give_back(&mut self, bus: &Bus, slice: &str) -> Result<LimitOutcome, LimitOutcome> {
        let outcome = |what: String| LimitOutcome {
            slice: slice.to_owned(),
            what,
        };
        self.set.remove(slice);
        let Some(original) = self.saved.remove(slice) else {
            return Err(outcome("no saved values to give back".to_owned()));
        };
        set_slice_memory(bus, slice, original)
            .map_err(|err| outcome(format!("could not give back {}: {err}", describe(original))))?;
        Ok(outcome(format!(
            "given back its own {}",
            describe(original)
        )))
    }
}

/// `runtime_dir`, created (0755) when missing; it must belong to this user and be writable
/// by no one else.
pub(super) fn open_private(runtime_dir: &Path) -> std::io::Result<Folder> {
    let folder = match Folder::open(runtime_dir) {
        Ok(folder) => folder,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let (Some(parent), Some(name)) = (runtime_dir.parent(), runtime_dir.file_name()) else {
                return Err(err);
            };
            Folder::open(parent)?.create_dir(name, 0o755)?
        }
        Err(err) => return Err(err),
    };
    let stat = folder.stat()?;
    if !owned_and_private(&stat, nix::unistd::geteuid()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "belongs to another user or others can write there",
        ));
    }
    Ok(folder)
}

/// `MemoryHigh=3G MemoryMax=infinity`.
fn describe(memory: MemoryProperties) -> String {
    let value = |bytes: u64| {
        if bytes == u64::MAX {
            "infinity".to_owned()
        } else {
            format_size(bytes)
        }
    };
    format!(
        "MemoryHigh={} MemoryMax={}",
        value(memory.high),
        value(memory.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_like_systemctl_show() {
        let memory = MemoryProperties {
            high: 3 << 30,
            max: u64::MAX,
        };
        assert_eq!(describe(memory), "MemoryHigh=3G MemoryMax=infinity");
    }

    #[test]
    fn what_to_give_back_survives_a_restart_and_a_bad_file_is_ignored_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("resctl");
        let (mut limits, warning) = SliceLimits::open(&runtime);
        assert_eq!(warning, None);
        limits.saved.insert(
            "build.slice".to_owned(),
            MemoryProperties {
                high: u64::MAX,
                max: u64::MAX,
            },
        );
        limits
            .set
            .insert("build.slice".to_owned(), (None, Some(300 << 20)));
        limits.keep();
        let (again, warning) = SliceLimits::open(&runtime);
        assert_eq!(warning, None);
        assert_eq!(again.saved, limits.saved);
        assert_eq!(again.set, limits.set);
        std::fs::write(runtime.join(STATE_FILE), "{ not json").unwrap();
        let (fresh, warning) = SliceLimits::open(&runtime);
        assert!(warning.is_some_and(|w| w.contains("ignored")));
        assert!(fresh.saved.is_empty());
        // A folder others can write to is not trusted.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (_, warning) = SliceLimits::open(&runtime);
        assert!(warning.is_some_and(|w| w.contains("others can write")));
    }

    #[test]
    fn slices_without_limits_ask_nothing_of_systemd() {
        let mut limits = SliceLimits::new();
        let wanted = BTreeMap::from([("build.slice".to_owned(), (None, None))]);
        assert!(limits.apply(&wanted).is_empty());
        assert!(limits.apply(&BTreeMap::new()).is_empty());
    }
}
