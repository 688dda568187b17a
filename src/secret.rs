//! The API token: a value that never shows itself. `Debug` and `Display` print a placeholder,
//! so the token cannot leak through logs, errors or panics by accident.
//!
//! Also where the token comes from (first found wins): `$DIGITALOCEAN_TOKEN`,
//! `$DIGITALOCEAN_ACCESS_TOKEN` (doctl's variable), `[api] token_file`, the systemd credential
//! `digitalocean-token` (`$CREDENTIALS_DIRECTORY`). A token file must be a regular file of at
//! most [`TOKEN_FILE_MAX`] bytes: a FIFO, a directory or a device is refused without waiting
//! on it, and no message ever carries the file's content.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The most a token file may hold: a DigitalOcean token is 71 characters.
pub const TOKEN_FILE_MAX: u64 = 4096;

/// The environment variables read for the token, in order.
pub const TOKEN_ENV: [&str; 2] = ["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"];

/// The name of the systemd credential (`LoadCredential=digitalocean-token:...`).
pub const CREDENTIAL: &str = "digitalocean-token";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The only way to the value: for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why `md` is not a regular file, in words (after a colon), or `None` when it is one.
fn not_regular(md: &Metadata) -> Option<&'static str> {
    let t = md.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "not a regular file but a directory"
    } else if t.is_fifo() {
        "not a regular file but a FIFO (named pipe)"
    } else if t.is_socket() {
        "not a regular file but a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "not a regular file but a device"
    } else {
        "not a regular file"
    })
}

/// Reads a small regular file: the reason in words when it cannot be read (the OS's reason,
/// or what kind of file it is, or its size), never its content. Neither a FIFO nor a device
/// is read or waited on: the path is looked at before it is opened, the open does not block
/// (`O_NONBLOCK`, should the path turn into a FIFO in between), and the opened file is
/// looked at again before a byte is read.
pub fn read_regular_file(path: &Path, max: u64) -> Result<(Vec<u8>, Metadata), String> {
    let md = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if let Some(why) = not_regular(&md) {
        return Err(why.into());
    }
    let mut f: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let md = f.metadata().map_err(|e| e.to_string())?;
    if let Some(why) = not_regular(&md) {
        return Err(why.into());
    }
    let too_big = || format!("larger than {max} bytes: is this the right file?");
    if md.len() > max {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > max {
        return Err(too_big());
    }
    Ok((buf, md))
}

/// Reads a token file: a regular file holding the token alone (surrounding white space and a
/// final newline are fine). The error is the reason in words (to follow a colon), without the
/// path or the content.
pub fn read_token_file(path: &Path) -> Result<Secret, String> {
    let (bytes, _) = read_regular_file(path, TOKEN_FILE_MAX)?;
    let text = String::from_utf8(bytes).map_err(|_| "not text".to_string())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("empty: put the DigitalOcean API token in it".into());
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "more than the token (several words or lines): put the token alone in it".into(),
        );
    }
    Ok(Secret::new(token.to_string()))
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(md) = std::fs::metadata(path) {
        if md.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                "the token file {} is readable by every user: chmod 600 it (or use LoadCredential=)",
                path.display()
            );
        }
    }
}

/// A token source that is set but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProblem {
    /// `[api] token_file` or the systemd credential.
    pub source: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is set but {} cannot be used: {}",
            self.source,
            self.path.display(),
            self.reason
        )
    }
}

/// What the token sources gave: the token and where it came from (the first found), and
/// every source that is set but could not be used, in order.
#[derive(Debug, Default)]
pub struct TokenLookup {
    pub token: Option<(Secret, String)>,
    pub problems: Vec<TokenProblem>,
}

/// Looks the token up in its sources, in order: the environment (`env` reads a variable),
/// `token_file`, the credential in `credentials_dir`. Stops at the first token found.
pub fn lookup_token(
    env: &dyn Fn(&str) -> Option<String>,
    token_file: Option<&Path>,
    credentials_dir: Option<&Path>,
) -> TokenLookup {
    let mut out = TokenLookup::default();
    for var in TOKEN_ENV {
        if let Some(t) = env(var) {
            let t = t.trim();
            if !t.is_empty() {
                out.token = Some((Secret::new(t.to_string()), format!("${var}")));
                return out;
            }
        }
    }
    if let Some(f) = token_file {
        match read_token_file(f) {
            Ok(t) => {
                warn_if_readable_by_others(f);
                out.token = Some((t, format!("[api] token_file {}", f.display())));
                return out;
            }
            Err(reason) => out.problems.push(TokenProblem {
                source: "[api] token_file",
                path: f.to_path_buf(),
                reason,
            }),
        }
    }
    if let Some(dir) = credentials_dir {
        let f = dir.join(CREDENTIAL);
        // No such credential: not passed (another service's credentials directory).
        if std::fs::symlink_metadata(&f).is_ok() {
            match read_token_file(&f) {
                Ok(t) => {
                    out.token = Some((t, format!("the systemd credential {CREDENTIAL}")));
                    return out;
                }
                Err(reason) => out.problems.push(TokenProblem {
                    source: "the systemd credential",
                    path: f,
                    reason,
                }),
            }
        }
    }
    out
}

/// Where the API token comes from, first found wins: `$DIGITALOCEAN_TOKEN`,
/// `$DIGITALOCEAN_ACCESS_TOKEN`, `token_file` (`[api] token_file`), the systemd credential
/// `digitalocean-token`: [`lookup_token`] over this process's environment.
pub fn token_lookup(token_file: Option<&Path>) -> TokenLookup {
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    lookup_token(&|var| std::env::var(var).ok(), token_file, creds.as_deref())
}

/// The token, `Ok(None)` when no source is set. A source that is set but cannot be used is
/// an error naming it and the reason when no later source gives a token, and a warning when
/// one does (e.g. a root-only `token_file` under the service's dynamic user, where the
/// credential is the way in).
pub fn find_token(token_file: Option<&Path>) -> color_eyre::Result<Option<Secret>> {
    let found = token_lookup(token_file);
    let problems: Vec<String> = found.problems.iter().map(|p| p.to_string()).collect();
    match found.token {
        Some((token, source)) => {
            for p in &problems {
                tracing::warn!("{p}; using the token from {source}");
            }
            Ok(Some(token))
        }
        None if !problems.is_empty() => Err(color_eyre::eyre::eyre!(crate::error::UsageError(
            format!("no usable DigitalOcean API token: {}", problems.join("; "))
        ))),
        None => Ok(None),
    }
}

/// A token for commands that call the API; its absence is an error that says what to do.
pub fn require_token(token_file: Option<&Path>) -> color_eyre::Result<Secret> {
    find_token(token_file)?.ok_or_else(|| {
        color_eyre::eyre::eyre!(crate::error::UsageError(
            "no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN), `[api] token_file`, or the systemd credential \"digitalocean-token\" (LoadCredential=)".into()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = super::Secret::new("dop_v1_abcdef".into());
        assert!(!format!("{s:?} {s} {s:#?}").contains("abcdef"));
        assert_eq!(s.expose(), "dop_v1_abcdef");
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    /// Reads with a guard: a read that blocks fails the test instead of hanging it.
    fn read_guarded(path: &Path) -> Result<Secret, String> {
        let path = path.to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_token_file(&path)).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading the token file blocked")
    }

    #[test]
    fn only_small_regular_files_are_token_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let e = read_guarded(&fifo).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
        let e = read_guarded(dir.path()).unwrap_err();
        assert!(e.contains("directory"), "{e}");
        let e = read_guarded(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("device"), "{e}");
        let e = read_guarded(&dir.path().join("absent")).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        // A symbolic link to a FIFO is looked at where it points.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(read_guarded(&link).unwrap_err().contains("FIFO"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; TOKEN_FILE_MAX as usize + 1]).unwrap();
        let e = read_guarded(&big).unwrap_err();
        assert!(e.contains("larger than 4096 bytes"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        assert!(read_guarded(&empty).unwrap_err().contains("empty"));
        let two = dir.path().join("two");
        std::fs::write(&two, "dop_v1_secretpart\nsecondline\n").unwrap();
        let e = read_guarded(&two).unwrap_err();
        assert!(
            e.contains("more than the token") && !e.contains("secret"),
            "{e}"
        );
        let good = dir.path().join("good");
        std::fs::write(&good, "  dop_v1_secretpart\n").unwrap();
        assert_eq!(read_guarded(&good).unwrap().expose(), "dop_v1_secretpart");
    }

    #[test]
    fn sources_in_order_and_the_reason_of_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        std::fs::write(creds.join(CREDENTIAL), "from-credential").unwrap();
        let got = |l: TokenLookup| l.token.map(|(t, _)| t.expose().to_string());
        let both = &[
            ("DIGITALOCEAN_TOKEN", "a"),
            ("DIGITALOCEAN_ACCESS_TOKEN", "b"),
        ];
        assert_eq!(
            got(lookup_token(&env(both), Some(&file), Some(&creds))).as_deref(),
            Some("a")
        );
        let access = &[
            ("DIGITALOCEAN_TOKEN", " "),
            ("DIGITALOCEAN_ACCESS_TOKEN", "b"),
        ];
        assert_eq!(
            got(lookup_token(&env(access), Some(&file), Some(&creds))).as_deref(),
            Some("b")
        );
        assert_eq!(
            got(lookup_token(&env(&[]), Some(&file), Some(&creds))).as_deref(),
            Some("from-file")
        );
        assert_eq!(
            got(lookup_token(&env(&[]), None, Some(&creds))).as_deref(),
            Some("from-credential")
        );
        // A configured token_file that is missing: named with the OS's reason.
        let missing = dir.path().join("nope-token");
        let l = lookup_token(&env(&[]), Some(&missing), None);
        assert!(l.token.is_none());
        let shown = l.problems[0].to_string();
        assert!(
            shown.contains("token_file is set but")
                && shown.contains("nope-token")
                && shown.contains("No such file"),
            "{shown}"
        );
        // ... and the credential still serves, with the problem kept for a warning.
        let l = lookup_token(&env(&[]), Some(&missing), Some(&creds));
        assert_eq!(l.problems.len(), 1);
        assert_eq!(got(l).as_deref(), Some("from-credential"));
        // A credentials directory without ours: no token, no problem.
        let l = lookup_token(&env(&[]), None, Some(dir.path()));
        assert!(l.token.is_none() && l.problems.is_empty());
    }
}
