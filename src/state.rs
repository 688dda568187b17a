//! The state file (docs/design.md §4): one versioned JSON document kept between one-shot runs,
//! replaced atomically (temp file in the same directory, fsync, rename, fsync of the
//! directory) under an exclusive lock on a separate lock file held for the whole command.
//! A corrupt or newer-version file is an error that names it and is never overwritten.
//! What it holds is the model's (`crate::model`); this module is the storage: the file, its
//! lock, and what a command reads of it ([`Reading`]); `compact` is the form scrapes take in
//! it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use color_eyre::eyre::{bail, eyre, WrapErr};
use color_eyre::Result;
use serde::{Deserialize, Serialize};

use crate::model::{
    HistoryEntry, ManualSize, Paused, PendingOp, Recommendation, Scrape, ScrapedDroplet,
};

mod compact;

pub const VERSION: u32 = 1;
/// How many history entries a group keeps.
pub const HISTORY_LIMIT: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub groups: BTreeMap<String, GroupState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// The last two scrapes, oldest first (rates need both).
    #[serde(default)]
    scrapes: compact::Scrapes,
    /// The last evaluation, without the per-droplet values of each condition (the planner
    /// does not need them; `evaluate --output json` prints them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<crate::policy::GroupEvaluation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::GroupPlan>,
    /// Scale actions, oldest first, bounded by [`HISTORY_LIMIT`].
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Operations started and not yet finished (create sent, droplet not yet healthy;
    /// destroy sent, droplet not yet gone).
    #[serde(default)]
    pub pending: Vec<PendingOp>,
    /// Target-tracking recommendations (for the scale-down stabilization window).
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
    /// Set by `doscale pause`: the group is scraped and evaluated, never changed, until
    /// `doscale resume`. (Added after version 1 went out: absent means not paused.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Paused>,
    /// Set by `doscale set`: a one-off desired size for the next plan, consumed once a plan
    /// that carries it out is applied. (Absent means none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualSize>,
}

/// What a command reads of the scrapes kept in the state file; everything else in it (the
/// evaluation, the plan, history, pending operations, …) is always read whole. Scrapes are
/// the bulk of the file (thousands of droplets' series), so a command reads no more of them
/// than it uses: what it does not read is kept as it was read and written back unchanged,
/// and a state read with less than [`Reading::ALL`] must not change its scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The previous scrape as well as the latest (counter rates need both). Without it the
    /// previous scrape is not parsed and [`GroupState::previous_scrape`] is `None`.
    pub previous: bool,
    /// Of each droplet's series, those of these metrics only (`None`: every series). The
    /// others are skipped without being read as numbers; with none named, no values are
    /// read at all.
    pub metrics: Option<&'static [&'static str]>,
}

impl Reading {
    /// Every scrape whole (`scrape`, `evaluate`, `run`, `demo`: they compute rates or
    /// change the scrapes).
    pub const ALL: Reading = Reading {
        previous: true,
        metrics: None,
    };

    /// The latest scrape, with the series of `metrics` only (`plan` reads `node_load1`
    /// where a group removes the least loaded droplets; `apply`, `status`, `pause`, `set`
    /// read the droplets and none of their series).
    pub const fn latest(metrics: &'static [&'static str]) -> Reading {
        Reading {
            previous: false,
            metrics: Some(metrics),
        }
    }
}

impl State {
    pub fn new() -> Self {
        State {
            version: VERSION,
            groups: BTreeMap::new(),
        }
    }

    pub fn group_mut(&mut self, name: &str) -> &mut GroupState {
        self.groups.entry(name.to_string()).or_default()
    }
}

impl GroupState {
    /// Keeps the last two scrapes. The one that becomes the previous one keeps only what
    /// rates read from it (each droplet's id, error and series).
    pub fn push_scrape(&mut self, s: Scrape) {
        let list = self.scrapes_mut();
        if let Some(prev) = list.last_mut() {
            prev.droplets
                .iter_mut()
                .for_each(ScrapedDroplet::keep_for_rates);
        }
        list.push(s);
        let n = list.len();
        if n > 2 {
            list.drain(..n - 2);
        }
    }

    pub fn latest_scrape(&self) -> Option<&Scrape> {
        self.scrapes.list.last()
    }

    /// The latest scrape, to change it (before it becomes the previous one).
    pub fn latest_scrape_mut(&mut self) -> Option<&mut Scrape> {
        self.scrapes_mut().last_mut()
    }

    /// The scrape before the latest; `None` when read without [`Reading::previous`].
    pub fn previous_scrape(&self) -> Option<&Scrape> {
        let list = &self.scrapes.list;
        let n = list.len();
        if n >= 2 {
            list.get(n - 2)
        } else {
            None
        }
    }

    /// The scrapes, to change them: what was read from the file no longer describes them.
    fn scrapes_mut(&mut self) -> &mut Vec<Scrape> {
        debug_assert!(
            !self.scrapes.partial,
            "scrapes changed after reading only the latest"
        );
        self.scrapes.raw = None;
        self.scrapes.partial = false;
        &mut self.scrapes.list
    }

    pub fn push_history(&mut self, e: HistoryEntry) {
        self.history.push(e);
        let n = self.history.len();
        if n > HISTORY_LIMIT {
            self.history.drain(..n - HISTORY_LIMIT);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The file.

/// The state file and its lock, held for as long as this value lives.
pub struct Store {
    path: PathBuf,
    _lock: File,
}

impl Store {
    /// Takes the exclusive lock on `<state>.lock` (fails fast naming the holder, or waits up
    /// to `wait` when given).
    pub fn open(path: &Path, wait: Option<Duration>) -> Result<Store> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!(
                "the state directory {} does not exist: create it (systemd's StateDirectory= does) or set `state_file`",
                dir.display()
            );
        }
        check_directory(dir);
        let lock_path = lock_path(path);
        // Never through a symbolic link (O_NOFOLLOW) and never truncated on opening: a link
        // planted at this name must not make doscale write into another file.
        let mut lock = open_in_state_dir(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &lock_path,
            true,
        )
        .wrap_err_with(|| format!("opening the lock file {}", lock_path.display()))?;
        let started = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut lock);
                    match wait {
                        Some(w) if started.elapsed() < w => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Some(w) => bail!(
                            "the state file {} is still locked by another doscale run ({holder}) after waiting {}: two passes must not overlap; look at that run, or wait longer with --wait-for DURATION",
                            path.display(),
                            humantime::format_duration(w)
                        ),
                        None => bail!(
                            "the state file {} is locked by another doscale run ({holder}): two passes must not overlap; wait for it, or pass --wait (up to 10m) or --wait-for DURATION",
                            path.display()
                        ),
                    }
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).wrap_err_with(|| format!("locking {}", lock_path.display()))
                }
            }
        }
        // Record who holds the lock, for the message a second run prints.
        let me = format!(
            "pid {} `{}` since {}",
            std::process::id(),
            std::env::args().skip(1).collect::<Vec<_>>().join(" "),
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let _ = lock.set_len(0);
        let _ = (&lock).write_all(me.as_bytes());
        Ok(Store {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole state ([`Reading::ALL`]); a missing file is an empty state.
    pub fn load(&self) -> Result<State> {
        self.load_with(Reading::ALL)
    }

    /// Reads the state, of its scrapes what `read` says.
    pub fn load_with(&self, read: Reading) -> Result<State> {
        load_file(&self.path, read)
    }

    /// Replaces the state atomically.
    pub fn save(&self, state: &State) -> Result<()> {
        save_file(&self.path, state)
    }
}

/// The state directory should not be writable by other users: someone who can replace the
/// state can make doscale create or destroy droplets.
fn check_directory(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(dir) {
        let mode = md.permissions().mode();
        if mode & 0o002 != 0 {
            tracing::warn!(
                "the state directory {} is writable by every user (mode {:o}): chmod o-w it, or use systemd's StateDirectory=",
                dir.display(),
                mode & 0o7777
            );
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn read_holder(lock: &mut File) -> String {
    let mut s = String::new();
    let _ = std::io::Seek::rewind(lock);
    let _ = lock.take(512).read_to_string(&mut s);
    if s.trim().is_empty() {
        "holder unknown".into()
    } else {
        s.trim().to_string()
    }
}

/// Opens a file of the state directory with `opts`, refusing what someone who can write in
/// the directory could plant there to turn doscale's writes onto another file: a symbolic
/// link (O_NOFOLLOW: the open fails with ELOOP), anything but a regular file (a FIFO would
/// block: O_NONBLOCK lets the open return and the check refuse it), and with `written_in_place`
/// (the lock file, the only file doscale writes in place) a file with other hard links.
/// A state file with other hard links is read (a backup made with `cp -al` is harmless: the
/// state is replaced by a rename, never written in place).
fn open_in_state_dir(
    opts: &mut OpenOptions,
    path: &Path,
    written_in_place: bool,
) -> std::io::Result<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refused = |what: &str| {
        std::io::Error::other(format!(
            "{} is {what}: doscale opens only plain files of its own in the state directory (someone who can write there could turn its writes onto another file); remove it, check who put it there, and run again",
            path.display()
        ))
    };
    let f = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused("a symbolic link"),
            _ => e,
        })?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(refused("not a regular file"));
    }
    if written_in_place && md.nlink() > 1 {
        return Err(refused("a hard link to another file"));
    }
    Ok(f)
}

/// Reads a state file without locking (for `status` and tests). A missing file is an empty
/// state; a corrupt or newer one is an error naming it, and so is a symbolic link.
pub fn load_file(path: &Path, read: Reading) -> Result<State> {
    let opened = open_in_state_dir(OpenOptions::new().read(true), path, false);
    let bytes = match opened.and_then(|f| Contents::of(&f)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new()),
        Err(e) => {
            return Err(e).wrap_err_with(|| format!("reading the state file {}", path.display()))
        }
    };
    let started = Instant::now();
    let state = parse_with(&bytes, read).map_err(|m| eyre!("the state file {} {m}; it is left as it is: move it aside (doscale starts afresh without it) or restore a good copy", path.display()))?;
    tracing::debug!(
        "read the state file {} ({} bytes) in {:.1} ms",
        path.display(),
        bytes.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(state)
}

/// A state file's bytes: mapped read-only where the system allows (the page cache is read in
/// place: no copy into fresh memory, which at thousands of droplets is a good part of a
/// pass), read into memory otherwise.
enum Contents {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Contents {
    #[allow(unsafe_code)]
    fn of(file: &File) -> std::io::Result<Contents> {
        if file.metadata()?.len() > 0 {
            // SAFETY: a mapping is undefined behaviour if the file changes under it. doscale
            // never writes a state file in place: it writes a new file and renames it over
            // the old one (`write_atomic_with`), which leaves this mapping on the old file
            // untouched, and only under the lock this command holds. Only another program
            // truncating the file in place during this read could fault the mapping, and
            // that ends the process before it writes anything.
            if let Ok(map) = unsafe { memmap2::Mmap::map(file) } {
                return Ok(Contents::Mapped(map));
            }
        }
        let mut bytes = Vec::new();
        (&*file).read_to_end(&mut bytes)?;
        Ok(Contents::Read(bytes))
    }
}

impl std::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m,
            Contents::Read(v) => v,
        }
    }
}

/// Parses state bytes, every scrape included; the error says what is wrong (without the
/// path).
pub fn parse(bytes: &[u8]) -> std::result::Result<State, String> {
    parse_with(bytes, Reading::ALL)
}

/// Parses state bytes and the scrapes `read` asks for.
pub fn parse_with(bytes: &[u8], read: Reading) -> std::result::Result<State, String> {
    #[derive(Deserialize)]
    struct Probe {
        version: Option<serde_json::Value>,
    }
    let version_error = |version: Option<&serde_json::Value>| match version.and_then(|v| v.as_u64())
    {
        Some(v) if v == VERSION as u64 => None,
        Some(v) if v > VERSION as u64 => Some(format!(
            "has version {v}, newer than this doscale understands ({VERSION}): upgrade doscale"
        )),
        _ => Some(format!("has no valid \"version\" (want {VERSION})")),
    };
    // One pass over the document when it is good; only a bad one is read a second time, to
    // say what is wrong with it (a newer version's shape is not an error of shape).
    match serde_json::from_slice::<State>(bytes) {
        Ok(mut state) => match version_error(Some(&serde_json::Value::from(state.version))) {
            None => {
                for (name, g) in &mut state.groups {
                    g.scrapes.parse(read).map_err(|e| {
                        format!("does not have the expected shape (group {name:?}, {e})")
                    })?;
                }
                Ok(state)
            }
            Some(e) => Err(e),
        },
        Err(shape) => {
            let probe: Probe =
                serde_json::from_slice(bytes).map_err(|e| format!("is not valid JSON ({e})"))?;
            Err(version_error(probe.version.as_ref())
                .unwrap_or_else(|| format!("does not have the expected shape ({shape})")))
        }
    }
}

/// Writes `state` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory. On any error the previous file is intact and the temporary removed.
pub fn save_file(path: &Path, state: &State) -> Result<()> {
    let started = Instant::now();
    let mut written = Duration::ZERO;
    write_atomic_with(path, 0o600, |f| {
        // Straight into the file: a state of thousands of droplets is never held twice.
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        serde_json::to_writer(&mut w, state)?;
        w.flush()?;
        written = started.elapsed();
        Ok(())
    })
    .wrap_err_with(|| {
        format!(
            "writing the state file {} (the previous state is intact)",
            path.display()
        )
    })?;
    tracing::debug!(
        "wrote the state file {}: serialised and written in {:.1} ms, synced in {:.1} ms",
        path.display(),
        written.as_secs_f64() * 1000.0,
        (started.elapsed() - written).as_secs_f64() * 1000.0
    );
    Ok(())
}

/// The atomic replace used for the state file and the metrics textfile.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_atomic_with(path, mode, |f| f.write_all(bytes))
}

/// The atomic replace: `write` fills a temporary file beside `path` (created with `mode`),
/// which is synced and renamed over `path`, and the directory synced. On any error the
/// previous file is intact and the temporary removed.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // A fresh file under a name nobody can guess, created exclusively (O_CREAT | O_EXCL,
    // which fails on a link planted at the name, and O_NOFOLLOW besides): writing, fchmod
    // and fchown reach only this file.
    let mut tmp = PathBuf::new();
    let mut opened = None;
    for _ in 0..8 {
        tmp = dir.join(format!(
            ".{file_name}.tmp.{}.{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => {
                opened = Some(f);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    let Some(mut f) = opened else {
        return Err(std::io::Error::other(format!(
            "no fresh temporary file could be created in {}",
            dir.display()
        )));
    };
    let result = (|| {
        // The mode exactly, whatever the umask (a textfile must stay readable by
        // node_exporter under UMask=0077).
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        // Run by hand as root on a file the service owns: keep the owner, so the service can
        // still read and replace it (the owner of the file itself, never of a link's target).
        if let Ok(md) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::MetadataExt;
            if md.is_file() {
                let _ = std::os::unix::fs::fchown(&f, Some(md.uid()), Some(md.gid()));
            }
        }
        write(&mut f)?;
        f.sync_data()?;
        // rename(2) replaces a link at `path` itself, never the file it points to.
        std::fs::rename(&tmp, path)?;
        // The directory is the configured one, followed if it is a link (systemd's
        // DynamicUser= makes /var/lib/<name> a link to /var/lib/private/<name>).
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?
            .sync_all()
    })();
    drop(f);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesMap;
    use chrono::DateTime;
    use compact_str::CompactString;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let store = Store::open(&p, None).unwrap();
        let mut s = store.load().unwrap();
        assert_eq!(s.version, VERSION);
        s.group_mut("web").recommendations.push(Recommendation {
            at: Utc::now(),
            desired: 3,
        });
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), s);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty());
    }

    fn chain(e: &color_eyre::Report) -> String {
        e.chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ")
    }

    #[test]
    fn links_planted_in_the_state_directory_are_refused_and_their_targets_untouched() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let untouched = || {
            assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
            let mode = std::fs::metadata(&victim).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        };
        let p = d.path().join("state.json");

        // the lock file: a link, then a hard link
        symlink(&victim, lock_path(&p)).unwrap();
        let e = chain(&Store::open(&p, None).err().unwrap());
        assert!(
            e.contains("state.json.lock") && e.contains("symbolic link"),
            "{e}"
        );
        untouched();
        std::fs::remove_file(lock_path(&p)).unwrap();
        std::fs::hard_link(&victim, lock_path(&p)).unwrap();
        let e = chain(&Store::open(&p, None).err().unwrap());
        assert!(
            e.contains("state.json.lock") && e.contains("hard link"),
            "{e}"
        );
        untouched();
        std::fs::remove_file(lock_path(&p)).unwrap();

        // the state file
        symlink(&victim, &p).unwrap();
        let store = Store::open(&p, None).unwrap();
        let e = chain(&store.load().err().unwrap());
        assert!(
            e.contains("state.json") && e.contains("symbolic link") && e.contains("remove it"),
            "{e}"
        );
        let e = chain(&load_file(&p, Reading::ALL).err().unwrap());
        assert!(e.contains("symbolic link"), "{e}");
        untouched();
        std::fs::remove_file(&p).unwrap();

        // the temporary file, at the name earlier versions used
        let old_tmp = d
            .path()
            .join(format!(".state.json.tmp.{}", std::process::id()));
        symlink(&victim, &old_tmp).unwrap();
        store.save(&two_scrapes()).unwrap();
        untouched();
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file());
        assert!(load_file(&p, Reading::ALL).is_ok());
        // a second name of the state file (a `cp -al` backup) is harmless: read, replaced
        std::fs::hard_link(&p, d.path().join("state.json.backup")).unwrap();
        assert!(store.load().is_ok());
        store.save(&two_scrapes()).unwrap();
        drop(store);

        // a link where the textfile goes: replaced by the file, its target untouched
        let prom = d.path().join("doscale.prom");
        symlink(&victim, &prom).unwrap();
        write_atomic(&prom, b"doscale_up 1\n", 0o644).unwrap();
        untouched();
        assert!(std::fs::symlink_metadata(&prom)
            .unwrap()
            .file_type()
            .is_file());

        // a FIFO as the state file is refused, not waited on
        std::fs::remove_file(&p).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&p).status();
        if made.is_ok_and(|s| s.success()) {
            let e = chain(&load_file(&p, Reading::ALL).err().unwrap());
            assert!(e.contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn second_lock_fails_fast_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let _a = Store::open(&p, None).unwrap();
        let e = Store::open(&p, None).err().unwrap().to_string();
        assert!(e.contains("locked") && e.contains("pid"), "{e}");
    }

    #[test]
    fn corrupt_or_newer_state_is_refused() {
        assert!(parse(b"{\"version\": 1, \"groups\": {")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse(b"{\"version\": 2}").unwrap_err().contains("newer"));
        assert!(parse(b"{\"groups\": {}}").unwrap_err().contains("version"));
        assert!(parse(b"{\"version\": 1}").is_ok());
    }

    fn two_scrapes() -> State {
        let mut s = State::new();
        for (i, load) in [(0u32, 0.5), (60, 1.5)] {
            let mut series = SeriesMap::new();
            series.insert("node_load1".into(), load);
            series.insert(
                "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}".into(),
                10.0 + i as f64,
            );
            s.group_mut("web").push_scrape(Scrape {
                at: DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
                droplets: vec![ScrapedDroplet {
                    id: 7,
                    name: "web-7".into(),
                    status: "active".into(),
                    created_at: DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
                    address: Some("10.0.0.7".into()),
                    error: None,
                    protected: false,
                    series,
                }],
                bad_lines: 0,
                bad_line_example: None,
            });
        }
        s
    }

    #[test]
    fn unchanged_scrapes_are_written_back_as_read() {
        let s = two_scrapes();
        let text = serde_json::to_string_pretty(&s).unwrap();
        // A command that does not change the scrapes writes them back byte for byte.
        let mut read = parse(text.as_bytes()).unwrap();
        assert_eq!(read, s);
        read.group_mut("web").recommendations.push(Recommendation {
            at: Utc::now(),
            desired: 2,
        });
        let again = serde_json::to_string(&read).unwrap();
        let scrapes_of = |t: &str| {
            let v: serde_json::Value = serde_json::from_str(t).unwrap();
            v["groups"]["web"]["scrapes"].clone()
        };
        assert_eq!(scrapes_of(&again), scrapes_of(&text));
        let pretty_scrapes = &text[text.find("\"scrapes\"").unwrap()..];
        let first_line = pretty_scrapes.lines().nth(1).unwrap();
        assert!(again.contains(first_line), "raw JSON kept: {first_line}");
        // A changed one is serialised afresh.
        read.group_mut("web").push_scrape(Scrape {
            at: Utc::now(),
            droplets: vec![],
            bad_lines: 0,
            bad_line_example: None,
        });
        let changed = parse(&serde_json::to_vec(&read).unwrap()).unwrap();
        assert_eq!(changed.groups["web"].scrapes.list.len(), 2);
        assert!(changed.groups["web"]
            .latest_scrape()
            .unwrap()
            .droplets
            .is_empty());
    }

    #[test]
    fn reading_only_the_latest_scrape_keeps_the_previous_one() {
        let s = two_scrapes();
        let bytes = serde_json::to_vec(&s).unwrap();
        let mut latest = parse_with(&bytes, Reading::latest(&["node_load1"])).unwrap();
        let g = &latest.groups["web"];
        assert!(g.previous_scrape().is_none());
        assert_eq!(
            g.latest_scrape().unwrap().droplets[0]
                .series
                .get("node_load1"),
            Some(&1.5)
        );
        latest.group_mut("web").plan = None;
        let back = parse(&serde_json::to_vec(&latest).unwrap()).unwrap();
        assert_eq!(back, s, "the previous scrape is written back unchanged");
    }

    #[test]
    fn a_state_whose_keys_were_sorted_reads_the_same() {
        // serde_json::Value sorts object keys (as `jq -S` does): `droplets` before `keys`.
        let s = two_scrapes();
        let sorted = serde_json::to_vec(&serde_json::to_value(&s).unwrap()).unwrap();
        let text = String::from_utf8(sorted.clone()).unwrap();
        assert!(text.find("\"droplets\"").unwrap() < text.find("\"keys\"").unwrap());
        assert_eq!(parse(&sorted).unwrap(), s);
    }

    #[test]
    fn nan_and_infinite_values_survive_a_save() {
        // Values are written as text, where NaN and ±Inf have a form of their own.
        let mut s = two_scrapes();
        let mut latest = s.groups["web"].latest_scrape().unwrap().clone();
        let odd = [
            ("a", f64::NAN),
            ("b", f64::INFINITY),
            ("c", 2.5),
            ("d", f64::NEG_INFINITY),
            ("e", -0.0),
            ("f", 1e300),
            ("g", 5e-324),
        ];
        for (k, v) in odd {
            latest.droplets[0].series.insert(k.into(), v);
        }
        s.group_mut("web").push_scrape(latest);
        let back = parse(&serde_json::to_vec(&s).unwrap()).unwrap();
        let series = &back.groups["web"].latest_scrape().unwrap().droplets[0].series;
        for (k, v) in odd {
            let got = *series.get(k).unwrap();
            assert!(
                got.to_bits() == v.to_bits() || (v.is_nan() && got.is_nan()),
                "{k}: {v:?} read back as {got:?}"
            );
        }
    }

    #[test]
    fn values_are_written_in_key_order_with_gaps_marked() {
        let mut s = two_scrapes();
        let mut latest = s.groups["web"].latest_scrape().unwrap().clone();
        latest.droplets.push(latest.droplets[0].clone());
        latest.droplets[1].id = 8;
        latest.droplets[0].series = [("b", 1.0), ("d", 0.5)]
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        latest.droplets[1].series = [("a", 2.0), ("c", 3.0), ("d", 4.0)]
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        s.group_mut("web").push_scrape(latest);
        let v = serde_json::to_value(&s).unwrap();
        let scrape = &v["groups"]["web"]["scrapes"][1];
        assert_eq!(scrape["keys"], serde_json::json!(["a", "b", "c", "d"]));
        assert_eq!(scrape["droplets"][0]["v"], "- 1.0 - 0.5");
        assert_eq!(scrape["droplets"][1]["v"], "2.0 - 3.0 4.0");
        let back = parse(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn the_previous_scrape_keeps_only_what_rates_read() {
        let s = two_scrapes();
        let v = serde_json::to_value(&s).unwrap();
        let prev = &v["groups"]["web"]["scrapes"][0]["droplets"][0];
        assert_eq!(prev["id"], 7);
        assert!(prev.get("v").is_some());
        for field in ["name", "status", "created", "address"] {
            assert!(prev.get(field).is_none(), "{field} kept: {prev}");
        }
        let latest = &v["groups"]["web"]["scrapes"][1]["droplets"][0];
        assert_eq!(latest["name"], "web-7");
        // Reads back as it was in memory (the rates are unchanged).
        let back = parse(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let prev = &back.groups["web"].previous_scrape().unwrap().droplets[0];
        assert!(prev.name.is_empty() && prev.status.is_empty() && prev.address.is_none());
        assert_eq!(prev.series.len(), 2);
        // A latest droplet is written whole whatever it holds (an empty name included).
        let mut odd = s.clone();
        let mut latest = odd.groups["web"].latest_scrape().unwrap().clone();
        latest.droplets[0].name = CompactString::default();
        latest.droplets[0].status = CompactString::default();
        odd.groups.get_mut("web").unwrap().scrapes = compact::Scrapes {
            list: vec![latest],
            raw: None,
            partial: false,
        };
        let back = parse(&serde_json::to_vec(&odd).unwrap()).unwrap();
        assert_eq!(back, odd);
        // The latest scrape must still be whole.
        let mut v = v;
        v["groups"]["web"]["scrapes"][1]["droplets"][0]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            e.contains("missing field `name`") && e.contains("scrape 2 of 2"),
            "{e}"
        );
    }

    #[test]
    fn earlier_pair_form_is_still_read() {
        // Before values were written as one string: `[key index, value]` pairs, in any
        // order, `null` for a value JSON cannot hold (read as NaN).
        let old = br#"{"version": 1, "groups": {"web": {"scrapes": [{"at": "2026-01-01T00:00:00Z",
            "keys": ["b", "a", "c"], "droplets": [{"id": 1, "name": "w", "status": "active",
            "created": 0, "v": [[0, 1.5], [1, 2.5], [2, null]]}]}]}}}"#;
        let s = parse(old).unwrap();
        let series = &s.groups["web"].latest_scrape().unwrap().droplets[0].series;
        assert_eq!(series.get("a"), Some(&2.5));
        assert_eq!(series.get("b"), Some(&1.5));
        assert!(series.get("c").unwrap().is_nan());
        assert_eq!(
            series.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |v: &str| {
            let text = format!(
                r#"{{"version": 1, "groups": {{"web": {{"scrapes": [{{"at": "2026-01-01T00:00:00Z",
                "keys": ["a", "b"], "droplets": [{{"id": 1, "name": "w", "status": "active",
                "created": 0, "v": "{v}"}}]}}]}}}}}}"#
            );
            parse(text.as_bytes()).unwrap_err()
        };
        let e = bad("1.0 x");
        assert!(e.contains("value 2") && e.contains("not a number"), "{e}");
        let e = bad("1 2 3");
        assert!(e.contains("3 values, more than the scrape's 2 keys"), "{e}");
        // Keys out of order (a file edited by hand) are still read into a sorted map.
        let text = br#"{"version": 1, "groups": {"web": {"scrapes": [{"at": "2026-01-01T00:00:00Z",
            "keys": ["b", "a"], "droplets": [{"id": 1, "name": "w", "status": "active",
            "created": 0, "v": "1 2"}]}]}}}"#;
        let s = parse(text).unwrap();
        let series = &s.groups["web"].latest_scrape().unwrap().droplets[0].series;
        assert_eq!(series.get("a"), Some(&2.0));
        assert_eq!(series.get("b"), Some(&1.0));
    }

    #[test]
    fn a_scrape_with_a_field_twice_is_refused() {
        let bad = br#"{"version": 1, "groups": {"web": {"scrapes": [{"at": "2026-01-01T00:00:00Z",
            "keys": ["a"], "droplets": [], "keys": ["b"]}]}}}"#;
        let e = parse(bad).unwrap_err();
        assert!(e.contains("duplicate field `keys`"), "{e}");
    }

    #[test]
    fn a_bad_scrape_names_itself() {
        let mut v: serde_json::Value = serde_json::to_value(two_scrapes()).unwrap();
        v["groups"]["web"]["scrapes"][0]["droplets"][0]["v"] = serde_json::json!([[9, 1.0]]);
        let bytes = serde_json::to_vec(&v).unwrap();
        let e = parse(&bytes).unwrap_err();
        assert!(
            e.contains("expected shape") && e.contains("\"web\"") && e.contains("scrape 1 of 2"),
            "{e}"
        );
        assert!(e.contains("out of range"), "{e}");
        // Reading only the latest scrape leaves the bad one as it is, for `evaluate` to
        // report.
        let latest = parse_with(&bytes, Reading::latest(&["node_load1"]));
        assert!(latest.is_ok(), "{latest:?}");
    }

    #[test]
    fn keeps_two_scrapes() {
        let mut g = GroupState::default();
        for _ in 0..3 {
            g.push_scrape(Scrape {
                at: Utc::now(),
                droplets: vec![],
                bad_lines: 0,
                bad_line_example: None,
            });
        }
        assert_eq!(g.scrapes.list.len(), 2);
    }

    /// A state file written by doscale before the outcomes were enums reads, and is written
    /// back byte for byte (`doscale` writes compact JSON in field order).
    #[test]
    fn a_state_file_of_the_previous_release_reads_and_writes_back_the_same() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/state/written-by-0.1.0-7287d21.json"
        );
        let bytes = std::fs::read(path).unwrap();
        let state = parse(&bytes).unwrap();
        let web = &state.groups["web"];
        let outcomes: Vec<_> = web.history.iter().map(|e| &e.outcome).collect();
        assert_eq!(
            outcomes,
            [
                &crate::model::ActionOutcome::Done,
                &crate::model::ActionOutcome::Done,
                &crate::model::ActionOutcome::Pending
            ]
        );
        assert_eq!(
            web.history[0].droplets[0].outcome,
            Some(crate::model::DropletOutcome::Healthy)
        );
        assert_eq!(
            web.history[1].droplets[0].outcome,
            Some(crate::model::DropletOutcome::Destroyed)
        );
        assert_eq!(web.history[2].droplets[0].outcome, None);
        assert_eq!(web.pending[0].stage, crate::model::Stage::Intent);
        assert_eq!(serde_json::to_vec(&state).unwrap(), bytes);
    }

    /// A state whose scrapes hold every field of a scrape and of a scraped droplet, set and
    /// unset, with series gaps, odd values and text that JSON escapes.
    fn every_field_state() -> State {
        let at = |s: i64, ns: u32| DateTime::from_timestamp(s, ns).unwrap();
        let series = |pairs: &[(&str, f64)]| -> SeriesMap {
            pairs.iter().map(|(k, v)| ((*k).into(), *v)).collect()
        };
        let droplet = |id: u64, name: &str, status: &str, created: i64| ScrapedDroplet {
            id,
            name: name.into(),
            status: status.into(),
            created_at: at(created, 0),
            address: None,
            error: None,
            protected: false,
            series: SeriesMap::new(),
        };
        let mut s = State::new();
        for (i, load) in [(0i64, 0.5), (60, 1.5)] {
            let mut one = droplet(1, "web-1", "active", 1_600_000_000);
            one.address = Some("10.0.0.1".into());
            one.series = series(&[
                (
                    "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}",
                    123.5 + i as f64,
                ),
                ("node_load1", load),
                ("node_load5", f64::NAN),
            ]);
            let mut two = droplet(
                2,
                "a \"quoted\" name, longer than twenty-four bytes: ü",
                "new",
                1_600_000_100,
            );
            two.address = Some("fd00::2".into());
            two.error = Some("port 9100: connection refused \"x\"\n".into());
            two.protected = true;
            let mut three = droplet(3, "", "", 0);
            three.series = series(&[
                ("node_load1", f64::INFINITY),
                ("node_memory_MemFree_bytes", -0.0),
                ("zz{a=\"b\\\\c\"}", 1e300),
            ]);
            three.error = Some("not scraped".into());
            s.group_mut("web").push_scrape(Scrape {
                at: at(1_700_000_000 + i, 123_456_789),
                droplets: vec![one, two, three],
                bad_lines: 3 + i as u64,
                bad_line_example: Some("weird{l=\"x\"} one".into()),
            });
        }
        let mut lone = droplet(9, "api-9", "off", 1_650_000_000);
        lone.series = series(&[("node_load1", 5e-324), ("node_load15", -2.0)]);
        s.group_mut("api").push_scrape(Scrape {
            at: at(1_700_000_100, 0),
            droplets: vec![lone],
            bad_lines: 0,
            bad_line_example: None,
        });
        s.group_mut("empty").push_scrape(Scrape {
            at: at(1_700_000_200, 5),
            droplets: vec![],
            bad_lines: 0,
            bad_line_example: None,
        });
        s
    }

    /// The compact form is written byte for byte as the writer of commit f73e4e2 wrote it
    /// (`tests/fixtures/state/written-by-f73e4e2.json`), and what is read from such a file is
    /// written back the same when serialised afresh (every field read, none invented).
    #[test]
    fn scrapes_are_written_as_the_previous_writer_wrote_them() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/state/written-by-f73e4e2.json"
        );
        let golden = std::fs::read(path).unwrap();
        let written = serde_json::to_vec(&every_field_state()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&golden)
        );
        let mut read = parse(&golden).unwrap();
        for g in read.groups.values_mut() {
            // no longer as read: serialised from the parsed scrapes
            g.scrapes_mut();
        }
        let again = serde_json::to_vec(&read).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&golden)
        );
    }
}
