//! JSON Lines files shared by the dead-letter sinks and replays of both
//! clients: crash-safe appends and atomic rewrites.
//!
//! * An append writes whole lines with one `write` under a per-path lock of
//!   this process. If the file does not end with a newline (a crash or a
//!   failed write cut the last line short), a newline is written first, so
//!   a torn line can never swallow the next letter; it stays behind as one
//!   invalid line that replays report.
//! * A replay reads the file under the same lock, then rewrites it through
//!   a temporary file and a rename, carrying over whatever was appended in
//!   between, so neither a letter written meanwhile nor the file itself is
//!   ever lost.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

#[cfg(unix)]
use std::os::unix::fs::FileExt;

/// A JSON Lines file that whole lines are appended to.
#[derive(Debug, Clone)]
pub(crate) struct JsonlFile {
    path: PathBuf,
}

impl JsonlFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        JsonlFile { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory and the file if needed, failing early when the
    /// file cannot be written.
    pub(crate) fn check_writable(&self) -> io::Result<()> {
        create_parent(&self.path)?;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        Ok(())
    }

    /// Appends `lines` (whole lines, each ending in `\n`) with one write,
    /// after terminating a torn last line.
    pub(crate) fn append(&self, lines: &[u8]) -> io::Result<()> {
        create_parent(&self.path)?;
        let state = PathState::of(&self.path);
        let _guard = state.lock();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        if !ends_with_newline(&file)? {
            file.write_all(b"\n")?;
        }
        file.write_all(lines)
    }

    /// Flushes the file's data to the disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => file.sync_data(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Whether the file is empty or its last byte is a newline.
fn ends_with_newline(file: &File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    #[cfg(unix)]
    file.read_exact_at(&mut last, len - 1)?;
    #[cfg(not(unix))]
    {
        let mut f = file;
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
    }
    Ok(last[0] == b'\n')
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Per-path coordination inside this process between appends and replays.
#[derive(Default)]
struct PathState {
    write: Mutex<()>,
    replaying: AtomicBool,
}

impl PathState {
    fn of(path: &Path) -> Arc<PathState> {
        static STATES: OnceLock<Mutex<HashMap<PathBuf, Arc<PathState>>>> = OnceLock::new();
        // One spelling per file: the directory resolved when it exists.
        let resolved = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                dir.canonicalize().ok().map(|d| d.join(name))
            }
            _ => None,
        };
        let key = resolved
            .or_else(|| std::path::absolute(path).ok())
            .unwrap_or_else(|| path.to_path_buf());
        let mut states = STATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        states.entry(key).or_default().clone()
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One line of a file being replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// 1-based line number.
    pub(crate) number: usize,
    /// The text, without its newline.
    pub(crate) text: String,
    /// `false` for a last line without a newline: a write cut short.
    pub(crate) complete: bool,
}

impl Line {
    /// `Err` with the reason when the line is a torn tail (a write cut short
    /// by a crash), which replay reports instead of parsing.
    pub(crate) fn check_complete(&self) -> Result<(), String> {
        if self.complete {
            Ok(())
        } else {
            Err("incomplete last line (a write cut short by a crash)".to_owned())
        }
    }
}

/// A file being replayed. Only one replay of a path runs at a time in a
/// process; dropping the value ends it.
pub(crate) struct ReplayFile {
    path: PathBuf,
    state: Arc<PathState>,
    /// Bytes read; lines appended after that are carried over by
    /// [`finish`](Self::finish).
    read_len: u64,
}

impl Drop for ReplayFile {
    fn drop(&mut self) {
        self.state.replaying.store(false, Ordering::Release);
    }
}

impl ReplayFile {
    /// Starts a replay of `path` and reads its lines (blank ones skipped);
    /// `Ok(None)` when the file does not exist.
    pub(crate) fn open(path: &Path) -> io::Result<Option<(ReplayFile, Vec<Line>)>> {
        let state = PathState::of(path);
        if state.replaying.swap(true, Ordering::AcqRel) {
            return Err(io::Error::other(format!(
                "a replay of {} is already running",
                path.display()
            )));
        }
        let mut replay = ReplayFile {
            path: path.to_path_buf(),
            state,
            read_len: 0,
        };
        let mut bytes = Vec::new();
        {
            let _guard = replay.state.lock();
            match File::open(path) {
                Ok(mut f) => f.read_to_end(&mut bytes)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
        }
        replay.read_len = bytes.len() as u64;
        let mut lines = Vec::new();
        let mut rest = &bytes[..];
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let (line, complete, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], true, &rest[end + 1..]),
                None => (rest, false, &[][..]),
            };
            rest = next;
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            if text.trim().is_empty() {
                continue;
            }
            lines.push(Line {
                number,
                text: text.to_owned(),
                complete,
            });
        }
        Ok(Some((replay, lines)))
    }

    /// Atomically replaces the file with `keep` (one line each) followed by
    /// whatever was appended since it was read. Returns the number of
    /// appended lines carried over.
    pub(crate) fn finish(self, keep: &[String]) -> io::Result<usize> {
        let _guard = self.state.lock();
        let mut tail = Vec::new();
        match File::open(&self.path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(self.read_len))?;
                f.read_to_end(&mut tail)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // An append after a torn last line starts with the newline that
        // ends it; that line is kept in `keep` already.
        let tail = tail.strip_prefix(b"\n").unwrap_or(&tail);
        let appended = tail.iter().filter(|b| **b == b'\n').count();
        let tmp = temp_path(&self.path);
        let written = (|| {
            let mut out = File::create(&tmp)?;
            for line in keep {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            out.write_all(tail)?;
            out.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &self.path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        // Make the rename itself durable (best effort: not every platform
        // can open a directory).
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = dir.sync_all();
        }
        Ok(appended)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "deadletter".to_owned());
    path.with_file_name(format!(".{name}.replay-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "flagwire-jsonl-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_torn_last_line_is_terminated_before_the_next_append() {
        let dir = temp_dir("torn");
        let path = dir.join("sub").join("letters.jsonl");
        let file = JsonlFile::new(path.clone());
        file.append(b"{\"a\":1}\n").unwrap();
        // A crash in the middle of the second line.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"b\":")
            .unwrap();
        file.append(b"{\"c\":3}\n").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":\n{\"c\":3}\n"
        );
        let (replay, lines) = ReplayFile::open(&path).unwrap().unwrap();
        let texts: Vec<_> = lines.iter().map(|l| (l.number, l.text.as_str())).collect();
        assert_eq!(texts, [(1, "{\"a\":1}"), (2, "{\"b\":"), (3, "{\"c\":3}")]);
        assert!(lines.iter().all(|l| l.complete));
        drop(replay);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn replay_reads_a_torn_tail_and_keeps_what_is_appended_meanwhile() {
        let dir = temp_dir("replay");
        let path = dir.join("letters.jsonl");
        fs::write(&path, "one\n\ntwo\nthr").unwrap();
        let (replay, lines) = ReplayFile::open(&path).unwrap().unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[2].number, lines[2].complete), (4, false));
        // A second replay of the same path is refused while this one runs.
        assert!(ReplayFile::open(&path).is_err());
        JsonlFile::new(path.clone()).append(b"four\n").unwrap();
        let kept = vec!["two".to_owned(), "thr".to_owned()];
        assert_eq!(replay.finish(&kept).unwrap(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\nthr\nfour\n");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert!(ReplayFile::open(&dir.join("none")).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}
