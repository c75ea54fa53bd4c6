//! Where job records live: one small JSON file per job key in a private folder —
//! `$RESCTL_HISTORY_DIR` if set, else `/var/lib/resctl/history` for root, else
//! `$XDG_STATE_HOME/resctl/history` (default `~/.local/state/resctl/history`). Records are
//! written atomically through the folder's descriptor ([`Folder::replace`]), read bounded
//! from regular files only ([`read_regular_text`]), and a record that is corrupt, too large,
//! of another version or of another key is ignored with a warning, never trusted.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::unistd::geteuid;

use super::{file_name, JobRecord, MAX_RECORD_BYTES, RECORD_VERSION};
use crate::safe_fs::{owned_and_private, read_regular_text, Folder};

/// Overrides the history folder (tests, or a shared location chosen on purpose).
pub const ENV_HISTORY_DIR: &str = "RESCTL_HISTORY_DIR";

/// The history folder for this user, by the rules above.
pub fn default_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(ENV_HISTORY_DIR).filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/resctl/history"));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join(".local/state"))
        })
        .ok_or("neither XDG_STATE_HOME nor HOME is set to an absolute folder")?;
    Ok(state.join("resctl/history"))
}

/// The job records in one folder.
#[derive(Debug, Clone)]
pub struct HistoryStore {
    dir: PathBuf,
}

/// What looking a job up found.
#[derive(Debug)]
pub enum Lookup {
    /// No record for this key.
    Missing,
    /// The key's record.
    Found(JobRecord),
    /// A file was there but is not a usable record of this key: why.
    Ignored(String),
}

impl HistoryStore {
    /// The store in `dir` (nothing is read or created yet).
    pub fn new(dir: PathBuf) -> HistoryStore {
        HistoryStore { dir }
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record of `key`. A folder others can write to is not read: a record planted
    /// there would steer the run.
    pub fn load(&self, key: &str) -> Lookup {
        match self.open_private(false) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Lookup::Missing,
            Err(err) => return Lookup::Ignored(err.to_string()),
        }
        let path = self.dir.join(file_name(key));
        match read_record(&path) {
            Ok(None) => Lookup::Missing,
            Ok(Some(record)) if record.key == key => Lookup::Found(record),
            Ok(Some(record)) => Lookup::Ignored(format!(
                "{}: holds the job '{}', not this one",
                path.display(),
                crate::job_text::escape(&record.key)
            )),
            Err(message) => Lookup::Ignored(message),
        }
    }

    /// Writes `record` (replacing the key's earlier one), creating the folder (0700) if
    /// missing. The folder must belong to this user and be writable by nobody else: a
    /// record another user could plant would steer the next run.
    pub fn save(&self, record: &JobRecord) -> io::Result<()> {
        let folder = self.open_private(true)?;
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        if json.len() as u64 > MAX_RECORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the record of '{}' would be larger than {MAX_RECORD_BYTES} bytes",
                    record.key
                ),
            ));
        }
        folder.replace(OsStr::new(&file_name(&record.key)), &json, 0o600, None)
    }

    /// Every readable record, and a line for each file that is not one.
    pub fn list(&self) -> io::Result<(Vec<JobRecord>, Vec<String>)> {
        let folder = match self.open_private(false) {
            Ok(folder) => folder,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()))
            }
            Err(err) => return Err(err),
        };
        let mut records = Vec::new();
        let mut problems = Vec::new();
        let mut names = folder.entries()?;
        names.sort();
        for name in names {
            let path = self.dir.join(&name);
            if !name.to_string_lossy().ends_with(".json") {
                continue;
            }
            match read_record(&path) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(message) => problems.push(message),
            }
        }
        Ok((records, problems))
    }

    /// Removes the record of `key`; `false` when there was none.
    pub fn forget(&self, key: &str) -> io::Result<bool> {
        let folder = match self.open_private(false) {
            Ok(folder) => folder,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        let existed = !matches!(self.load(key), Lookup::Missing);
        folder.remove(OsStr::new(&file_name(key)))?;
        Ok(existed)
    }

    /// Opens the folder (creating it, 0700, when `create`), refusing one that is not this
    /// user's own and private.
    fn open_private(&self, create: bool) -> io::Result<Folder> {
        if create && !self.dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|err| {
                    io::Error::new(err.kind(), format!("{}: {err}", self.dir.display()))
                })?;
        }
        let folder = Folder::open(&self.dir)?;
        let stat = folder.stat()?;
        if !owned_and_private(&stat, geteuid()) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: not a folder of this user's that only it can write to; job history is not kept there",
                    self.dir.display()
                ),
            ));
        }
        Ok(folder)
    }
}

/// One run's use of its job's history: the record it started from, and where to keep
/// what it learned.
#[derive(Debug, Clone)]
pub struct JobHistory {
    /// `None`: no folder to keep a history in (the run was told why).
    store: Option<HistoryStore>,
    key: String,
    previous: Option<JobRecord>,
}

impl JobHistory {
    /// Looks `key` up in the default folder ([`default_dir`]); a record that cannot be
    /// used is reported (a warning) and the run starts from the defaults.
    pub fn open(key: String) -> JobHistory {
        let store = match default_dir() {
            Ok(dir) => HistoryStore::new(dir),
            Err(message) => {
                tracing::warn!("history: {message}; this run neither uses nor keeps one");
                return JobHistory {
                    store: None,
                    key,
                    previous: None,
                };
            }
        };
        let previous = match store.load(&key) {
            Lookup::Found(record) => Some(record),
            Lookup::Missing => None,
            Lookup::Ignored(why) => {
                tracing::warn!("history: ignored: {why}");
                None
            }
        };
        JobHistory {
            store: Some(store),
            key,
            previous,
        }
    }

    /// The record this run starts from, if any.
    pub fn previous(&self) -> Option<&JobRecord> {
        self.previous.as_ref()
    }

    /// Keeps what the run `learned` for the next run (a failure is a warning: the job has
    /// ended, its history is only a help).
    pub fn remember(&self, learned: &super::Learned) {
        let record = JobRecord::after_run(&self.key, self.previous.as_ref(), learned, now());
        if let Some(record) = self.keep(record) {
            tracing::debug!("history: kept {}", describe(&record));
        }
    }

    /// Keeps what a static sweep (`resctl bench --save`) measured: `counts`, and the count
    /// it `recommended`.
    pub fn remember_sweep(&self, counts: &[super::SweepCount], recommended: Option<u32>) {
        let record = JobRecord::from_sweep(
            &self.key,
            self.previous.as_ref(),
            counts,
            recommended,
            now(),
        );
        if record.is_none() {
            tracing::warn!("history: no count succeeded: nothing to keep");
        }
        if let Some(record) = self.keep(record) {
            tracing::info!(
                "history: kept {}; `resctl run --job-key '{}' -- ...` starts from it",
                describe(&record),
                crate::job_text::escape(&self.key)
            );
        }
    }

    /// Writes `record`, if any; the record once written (a failure is a warning).
    fn keep(&self, record: Option<JobRecord>) -> Option<JobRecord> {
        let (store, record) = (self.store.as_ref()?, record?);
        match store.save(&record) {
            Ok(()) => Some(record),
            Err(err) => {
                tracing::warn!("history: not kept: {err}");
                None
            }
        }
    }
}

/// "30M per worker over a base of 1M for 'KEY'", escaped.
fn describe(record: &JobRecord) -> String {
    format!(
        "{} per worker over a base of {} for '{}'",
        crate::units::format_size(record.per_worker),
        crate::units::format_size(record.base),
        crate::job_text::escape(&record.key)
    )
}

/// Seconds since the epoch (0 if the clock is before it).
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Reads one record file: `None` when it does not exist; an error naming the file when it
/// is not a regular file, too large, not JSON of a record, or of another version.
fn read_record(path: &Path) -> Result<Option<JobRecord>, String> {
    let text = match read_regular_text(path, MAX_RECORD_BYTES) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let record: JobRecord = serde_json::from_str(&text)
        .map_err(|err| format!("{}: not a job record ({err})", path.display()))?;
    if record.version != RECORD_VERSION {
        return Err(format!(
            "{}: a record of version {}, this resctl reads version {RECORD_VERSION}",
            path.display(),
            record.version
        ));
    }
    if record.per_worker == 0 {
        return Err(format!("{}: records no memory per worker", path.display()));
    }
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Learned, MAX_RECORD_BYTES};
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn record(key: &str) -> JobRecord {
        JobRecord::after_run(
            key,
            None,
            &Learned {
                marginal: Some(50 << 20),
                spread: Some(1 << 20),
                peaks: BTreeMap::from([(4, 220 << 20)]),
                peak_memory: 220 << 20,
                peak_threads: 4,
                throughput: BTreeMap::from([(4, 12.5)]),
                exit_code: 0,
                oom_kills: 0,
                final_threads: 4,
            },
            1_700_000_000,
        )
        .unwrap()
    }

    fn private_dir() -> (tempfile::TempDir, HistoryStore) {
        let temp = tempfile::tempdir().unwrap();
        let store = HistoryStore::new(temp.path().join("resctl/history"));
        (temp, store)
    }

    #[test]
    fn a_record_round_trips_and_is_forgotten() {
        let (_temp, store) = private_dir();
        assert!(matches!(store.load("job"), Lookup::Missing));
        store.save(&record("job")).unwrap();
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the folder is created private");
        match store.load("job") {
            Lookup::Found(found) => assert_eq!(found, record("job")),
            other => panic!("{other:?}"),
        }
        let (records, problems) = store.list().unwrap();
        assert_eq!((records.len(), problems.len()), (1, 0));
        assert!(store.forget("job").unwrap());
        assert!(!store.forget("job").unwrap());
        assert!(matches!(store.load("job"), Lookup::Missing));
    }

    #[test]
    fn corrupt_foreign_and_oversized_records_are_ignored_with_a_reason() {
        let (_temp, store) = private_dir();
        store.save(&record("job")).unwrap();
        let path = store.dir().join(file_name("job"));
        std::fs::write(&path, "{not json").unwrap();
        let Lookup::Ignored(why) = store.load("job") else {
            panic!("corrupt record used")
        };
        assert!(why.contains("not a job record"), "{why}");
        let mut other_version = record("job");
        other_version.version = RECORD_VERSION + 1;
        std::fs::write(&path, serde_json::to_vec(&other_version).unwrap()).unwrap();
        let Lookup::Ignored(why) = store.load("job") else {
            panic!("a record of another version used")
        };
        assert!(why.contains("version"), "{why}");
        // A record of another key under this key's name (a hash collision, or a copied file).
        std::fs::write(&path, serde_json::to_vec(&record("other")).unwrap()).unwrap();
        assert!(matches!(store.load("job"), Lookup::Ignored(_)));
        let huge = vec![b' '; MAX_RECORD_BYTES as usize + 1];
        std::fs::write(&path, huge).unwrap();
        let Lookup::Ignored(why) = store.load("job") else {
            panic!("an oversized record read")
        };
        assert!(why.contains("larger than"), "{why}");
        // A FIFO is refused, not waited on.
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(store.load("job"), Lookup::Ignored(_)));
        let (records, problems) = store.list().unwrap();
        assert_eq!((records.len(), problems.len()), (0, 1));
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let (_temp, store) = private_dir();
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = store.save(&record("job")).unwrap_err();
        assert!(err.to_string().contains("only it can write"), "{err}");
        // Nor is a record planted there read.
        let planted = serde_json::to_vec(&record("job")).unwrap();
        std::fs::write(store.dir().join(file_name("job")), planted).unwrap();
        assert!(
            matches!(store.load("job"), Lookup::Ignored(why) if why.contains("only it can write"))
        );
        std::fs::remove_file(store.dir().join(file_name("job"))).unwrap();
        // A planted symlink at the record's name is replaced, not written through.
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let target = store.dir().join("..").join("target");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, store.dir().join(file_name("job"))).unwrap();
        store.save(&record("job")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
