//! Small helpers shared by every stage: errors that read as one clear message, command
//! execution, hashing for cache keys, and a one-line status display.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A failure the user can act on: what went wrong and, where known, how to fix it.
#[derive(Debug)]
pub struct Error {
    pub what: String,
    pub hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(what: impl Into<String>) -> Self {
        Error {
            what: what.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::new(e.to_string())
    }
}

/// Attaches a description of the action to an I/O error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(format!("{}: {e}", what())))
    }
}

/// Builds a `Command` from a program and arguments.
pub fn cmd<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// Runs a command to completion, capturing its output; a non-zero exit is an error that
/// names the command and shows the tail of what it printed.
pub fn run_captured(c: &mut Command) -> Result<Output> {
    let shown = describe(c);
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot start `{shown}`: {e}")))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        return Err(Error::new(format!(
            "`{shown}` failed ({}):\n{}",
            out.status,
            tail_lines(&text, 20)
        )));
    }
    Ok(out)
}

/// Runs a command with its output going to a log file.
pub fn run_logged(c: &mut Command, log: &Path) -> Result<()> {
    let shown = describe(c);
    let file = fs::File::create(log).context(|| format!("create {}", log.display()))?;
    let status = c
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .map_err(|e| Error::new(format!("cannot start `{shown}`: {e}")))?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        return Err(Error::new(format!(
            "`{shown}` failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail_lines(&text, 20)
        )));
    }
    Ok(())
}

pub fn stdout_of(c: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&run_captured(c)?.stdout).into_owned())
}

pub fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether a program can be found on `PATH`.
pub fn have_program(name: &str) -> bool {
    find_program(name).is_some()
}

pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// FNV-1a 64: a stable, dependency-free hash for cache keys (not for security).
#[derive(Clone, Copy)]
pub struct KeyHasher(u64);

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl KeyHasher {
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate fields so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// SHA-256 of a file, through coreutils' `sha256sum`.
pub fn sha256_file(path: &Path) -> Result<String> {
    let out = stdout_of(&mut cmd("sha256sum", &[path]))?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| Error::new(format!("sha256sum printed nothing for {}", path.display())))
}

/// Writes a file only when its content differs, so that make's timestamps stay put.
/// Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &[u8]) -> Result<bool> {
    if fs::read(path).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    }
    // Write beside and rename: a hard-linked pristine file is never modified in place.
    let tmp = path.with_extension("ferrite-tmp");
    fs::write(&tmp, content).context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).context(|| format!("rename to {}", path.display()))?;
    Ok(true)
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A stage of work shown to the user: a one-line status that updates in place on a
/// terminal, and the time the stage took when it ends.
pub struct Stage {
    name: String,
    start: Instant,
    tty: bool,
    last_draw: Option<Instant>,
}

impl Stage {
    pub fn begin(name: impl Into<String>) -> Self {
        let name = name.into();
        let tty = io::stderr().is_terminal();
        if !tty {
            eprintln!("==> {name}");
        }
        Stage {
            name,
            start: Instant::now(),
            tty,
            last_draw: None,
        }
    }

    /// Shows progress; drawn at most a few times a second, and only on a terminal.
    pub fn status(&mut self, text: &str) {
        if !self.tty {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(150))
        {
            return;
        }
        self.last_draw = Some(now);
        let width = terminal_width();
        let mut line = format!(
            "==> {} [{}] {}",
            self.name,
            fmt_duration(self.start.elapsed()),
            text
        );
        if line.chars().count() > width {
            line = line.chars().take(width.saturating_sub(1)).collect();
        }
        eprint!("\r\x1b[2K{line}");
        let _ = io::stderr().flush();
    }

    pub fn done(self, summary: &str) -> Duration {
        let took = self.start.elapsed();
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        let sep = if summary.is_empty() { "" } else { ": " };
        eprintln!("==> {}{sep}{summary} ({})", self.name, fmt_duration(took));
        took
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

pub fn warn(text: &str) {
    eprintln!("warning: {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hasher_separates_fields() {
        let a = KeyHasher::default().update(b"ab").update(b"c").hex();
        let b = KeyHasher::default().update(b"a").update(b"bc").hex();
        assert_ne!(a, b);
        assert_eq!(a, KeyHasher::default().update(b"ab").update(b"c").hex());
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_lines("1\n2\n3\n4", 2), "3\n4");
        assert_eq!(tail_lines("1", 5), "1");
    }

    #[test]
    fn write_if_changed_only_writes_on_change() {
        let dir = std::env::temp_dir().join(format!("xtask-wic-{}", std::process::id()));
        let f = dir.join("a/b.txt");
        assert!(write_if_changed(&f, b"x").unwrap());
        assert!(!write_if_changed(&f, b"x").unwrap());
        assert!(write_if_changed(&f, b"y").unwrap());
        assert_eq!(fs::read(&f).unwrap(), b"y");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(fmt_duration(Duration::from_secs(125)), "2m05s");
    }
}
