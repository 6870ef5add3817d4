//! The durable spool: accepted events in segment files on disk, written by
//! group commit, delivered from there, removed once acknowledged.
//!
//! # Layout
//!
//! `<dir>/<fingerprint>/` holds the spool of one API key (the fingerprint is
//! the first 8 bytes of a SHA-256 of the key, in hex, so the key itself is
//! never on disk and two keys never share segments):
//!
//! * `lock`: held (`flock`-style) while a buffer uses the spool; a second
//!   buffer on the same directory is refused. The operating system drops the
//!   lock when the process dies, even by `SIGKILL`.
//! * `seg-<16 hex digits>.log`: segments, oldest first. A segment is a
//!   48-byte header (magic `FWSPOOL\0`, format version, fingerprint, and an
//!   *ack block*: how many of its records are resolved, with a CRC-32C) and
//!   then records: `len: u32 LE`, `crc32c(len ‖ payload): u32 LE`, payload
//!   (the event's keyless JSON).
//!
//! # Life of an event
//!
//! 1. `enqueue` puts it in memory (the pending queue); no I/O on the
//!    caller's thread.
//! 2. The commit thread writes everything pending to the active segment
//!    every commit interval (one `write` per commit) and syncs it to the
//!    disk according to the [`FsyncPolicy`]. Segments are rotated at
//!    [`SpoolConfig::segment_bytes`].
//! 3. The delivery worker reads committed records back in batches of up to
//!    100 and sends them. A record is resolved when its batch got a 2xx or
//!    was dead-lettered for good.
//! 4. Resolved ranges advance the segment's ack count (written to its
//!    header at the next commit, so a restart skips what was delivered); a
//!    segment whose records are all resolved is deleted.
//!
//! # Crashes
//!
//! On start-up every segment is read and every record checked (length and
//! CRC). A record cut short or damaged (a crash in the middle of a write)
//! ends the segment: it and anything after it in that segment are skipped
//! and counted as a torn tail. New events always go to a new segment, so a
//! torn tail can never be merged with a later record. The records after the
//! ack count are delivered again with the idempotency keys they were queued
//! with, so the capture service drops the ones it already had.
//!
//! What a `SIGKILL` (or `abort`, or a power cut with [`FsyncPolicy::Never`])
//! can lose: the events accepted since the last commit, at most one commit
//! interval's worth. With [`FsyncPolicy::EveryCommit`] a power cut loses no
//! more than that either.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flagwire_core::events::ApiKey;

use super::crc32c::crc32c;
use super::queue::Chunk;

/// Default time between two commits of the spool.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Default bound on the events the spool holds, in bytes.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default size at which a segment file is closed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

const MAGIC: &[u8; 8] = b"FWSPOOL\0";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 48;
/// Where the ack block (`acked: u64`, `crc32c(fingerprint ‖ acked): u32`)
/// sits in the header.
const ACK_OFFSET: u64 = 32;
/// Bytes in front of each record's payload.
pub(crate) const RECORD_OVERHEAD: usize = 8;
/// Largest payload a record may claim; anything larger is damage.
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// When the spool's writes are forced to the disk (`fsync`).
///
/// A commit always hands the events to the operating system, which is what
/// survives the death of the process (`SIGKILL`, `abort`, a panic). Syncing
/// also survives a crash of the machine or a power cut, at the cost of a
/// disk flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// After every commit (the default): a power cut loses at most one
    /// commit interval, as a process crash does.
    #[default]
    EveryCommit,
    /// At most once per interval.
    Interval(Duration),
    /// Never: the operating system writes back when it likes.
    Never,
}

/// Settings of the durable spool; see [`EventBufferBuilder::spool`].
///
/// ```
/// use std::time::Duration;
/// use flagwire::events::{FsyncPolicy, SpoolConfig};
///
/// let spool = SpoolConfig::new("/var/lib/my-app/flagwire-events")
///     .commit_interval(Duration::from_millis(50))
///     .fsync(FsyncPolicy::Interval(Duration::from_secs(1)))
///     .max_bytes(1 << 30);
/// assert_eq!(spool.dir().to_str(), Some("/var/lib/my-app/flagwire-events"));
/// ```
///
/// [`EventBufferBuilder::spool`]: super::EventBufferBuilder::spool
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    pub(crate) dir: PathBuf,
    pub(crate) commit_interval: Duration,
    pub(crate) fsync: FsyncPolicy,
    pub(crate) max_bytes: u64,
    pub(crate) segment_bytes: u64,
}

impl SpoolConfig {
    /// A spool in `dir` (created if needed) with the defaults: commit every
    /// 100 ms, sync every commit, at most 256 MiB of events, 8 MiB segments.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            fsync: FsyncPolicy::default(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Time between commits: the most a `SIGKILL` can lose is the events
    /// accepted in one interval (default 100 ms).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// When commits are synced to the disk (default
    /// [`FsyncPolicy::EveryCommit`]).
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Most bytes of events the spool holds, waiting and in memory together
    /// (default 256 MiB). Beyond it the buffer's overflow policy applies.
    /// Files are removed a segment at a time, so the directory can exceed
    /// the bound by about one segment.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Size at which a segment is closed and a new one started (default
    /// 8 MiB).
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.commit_interval.is_zero() {
            return Err("the spool's commit interval must not be zero");
        }
        if matches!(self.fsync, FsyncPolicy::Interval(d) if d.is_zero()) {
            return Err("the spool's fsync interval must not be zero");
        }
        if self.segment_bytes < 4096 {
            return Err("spool segments must be at least 4096 bytes");
        }
        if self.max_bytes < self.segment_bytes {
            return Err("the spool's max_bytes must be at least one segment");
        }
        Ok(())
    }
}

/// Why the spool could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpoolError {
    /// Reading or writing the directory failed.
    Io(io::Error),
    /// Another event buffer (in this or another process) uses the
    /// directory.
    Locked(PathBuf),
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "event spool I/O error: {e}"),
            Self::Locked(dir) => write!(
                f,
                "the event spool {} is in use by another event buffer",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Locked(_) => None,
        }
    }
}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The first 8 bytes of `SHA-256("flagwire-spool\0" ‖ key)`.
fn fingerprint(key: &ApiKey) -> [u8; 8] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"flagwire-spool\0");
    ctx.update(key.expose().as_bytes());
    let digest = ctx.finish();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest.as_ref()[..8]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ack_block(fingerprint: &[u8; 8], acked: u64) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(&acked.to_le_bytes());
    let mut covered = [0u8; 16];
    covered[..8].copy_from_slice(fingerprint);
    covered[8..].copy_from_slice(&acked.to_le_bytes());
    block[8..12].copy_from_slice(&crc32c(&covered).to_le_bytes());
    block
}

fn header(fingerprint: &[u8; 8]) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(fingerprint);
    h[ACK_OFFSET as usize..].copy_from_slice(&ack_block(fingerprint, 0));
    h
}

/// Appends one record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = super::crc32c::Crc32c::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finish().to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading records from a segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Valid records.
    pub(crate) records: u64,
    /// Where the valid records end.
    pub(crate) end: u64,
    /// Bytes after the last valid record (a torn or damaged tail).
    pub(crate) torn_bytes: u64,
}

/// Checks the records of a segment's body (everything after the header).
pub(crate) fn scan_records(body: &[u8]) -> Scan {
    let mut at = 0usize;
    let mut records = 0;
    while let Some((payload_len, _)) = read_record(&body[at..]) {
        at += RECORD_OVERHEAD + payload_len;
        records += 1;
    }
    Scan {
        records,
        end: HEADER_LEN + at as u64,
        torn_bytes: (body.len() - at) as u64,
    }
}

/// The payload of the record at the start of `bytes`, if it is whole, its
/// CRC matches and its payload is UTF-8 JSON of an object.
fn read_record(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let head = bytes.get(..RECORD_OVERHEAD)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?);
    if !(2..=MAX_RECORD).contains(&len) {
        return None;
    }
    let crc = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let payload = bytes.get(RECORD_OVERHEAD..RECORD_OVERHEAD + len as usize)?;
    let mut check = super::crc32c::Crc32c::new();
    check.update(&head[..4]);
    check.update(payload);
    if check.finish() != crc || payload[0] != b'{' || std::str::from_utf8(payload).is_err() {
        return None;
    }
    Some((len as usize, payload))
}

/// One segment file, as the spool tracks it.
#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    /// Committed records.
    records: u64,
    /// Where the committed records end (the readable length).
    end: u64,
    /// Record index and sequence number of the first record this process
    /// delivers (records before it were resolved before a restart).
    first_index: u64,
    first_seq: u64,
    /// Contiguous resolved records from the start.
    acked: u64,
    /// Resolved ranges past `acked`: start index → end index.
    done: BTreeMap<u64, u64>,
    /// `acked` as last written to the header.
    acked_written: u64,
    /// No longer written to.
    sealed: bool,
}

impl Segment {
    fn seq(&self, index: u64) -> u64 {
        self.first_seq + (index - self.first_index)
    }

    fn resolve(&mut self, start: u64, end: u64) {
        if start == self.acked {
            self.acked = end;
        } else {
            self.done.insert(start, end);
        }
        while let Some(end) = self.done.remove(&self.acked) {
            self.acked = end;
        }
    }

    fn finished(&self) -> bool {
        self.sealed && self.acked >= self.records
    }
}

/// Where the worker reads next.
#[derive(Debug, Default)]
struct Cursor {
    segment: u64,
    index: u64,
    offset: u64,
    /// An open handle on the segment being read.
    file: Option<File>,
    file_segment: u64,
}

/// Mutable spool state.
#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    next_id: u64,
    /// The writer's handle on the last segment, if it is not sealed.
    active: Option<File>,
    /// Sequence number of the newest committed event.
    committed_seq: u64,
    cursor: Cursor,
    last_fsync: Option<Instant>,
}

/// A batch read from the spool.
#[derive(Debug)]
pub(crate) struct SpoolBatch {
    pub(crate) segment: u64,
    pub(crate) index: u64,
    /// The events, as a chunk (with the spool's key and first sequence
    /// number).
    pub(crate) chunk: Chunk,
    /// Their record bytes (header and payload).
    pub(crate) record_bytes: u64,
}

/// What opening a spool found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Unresolved events found, to be delivered again.
    pub(crate) events: u64,
    /// Their record bytes.
    pub(crate) bytes: u64,
    /// Segments whose end was torn or damaged.
    pub(crate) torn_tails: u64,
    /// Bytes skipped in those tails.
    pub(crate) torn_bytes: u64,
}

/// An open spool. Shared by the commit thread (writes) and the delivery
/// worker (reads, resolves); one mutex guards the bookkeeping, file I/O of
/// a commit happens outside it.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    config: SpoolConfig,
    fingerprint: [u8; 8],
    key: ApiKey,
    /// Locked while the spool is in use; unlocked by `close`.
    lock: File,
    state: Mutex<State>,
    /// Record bytes of committed events not yet resolved.
    pub(crate) live_bytes: AtomicU64,
    /// Events committed since start.
    pub(crate) committed: AtomicU64,
    /// Commits that failed (the events stay in memory and are tried again).
    pub(crate) errors: AtomicU64,
    /// Syncs written segments to the disk, off the commit thread.
    syncer: Option<Syncer>,
}

impl Spool {
    /// Opens (creating) the spool of `key` in `config.dir`, locks it and
    /// reads what a previous run left. Sequence numbers of recovered events
    /// start at 1.
    pub(crate) fn open(config: SpoolConfig, key: ApiKey) -> Result<(Spool, Recovery), SpoolError> {
        let fingerprint = fingerprint(&key);
        let dir = config.dir.join(hex(&fingerprint));
        fs::create_dir_all(&dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir)),
            Err(fs::TryLockError::Error(e)) => return Err(SpoolError::Io(e)),
        }
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name
                .strip_prefix("seg-")
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| u64::from_str_radix(n, 16).ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        let mut next_seq = 1;
        for &id in &ids {
            let path = segment_path(&dir, id);
            let bytes = fs::read(&path)?;
            let Some((acked, body)) = parse_header(&bytes, &fingerprint) else {
                // A header cut short (created just before a crash) or not
                // ours: nothing in it can be trusted or sent.
                if bytes.len() as u64 <= HEADER_LEN {
                    let _ = fs::remove_file(&path);
                } else {
                    tracing::warn!(path = %path.display(), "skipping a spool segment with a foreign or damaged header");
                    recovery.torn_tails += 1;
                    recovery.torn_bytes += bytes.len() as u64;
                }
                continue;
            };
            let scan = scan_records(body);
            if scan.torn_bytes > 0 {
                recovery.torn_tails += 1;
                recovery.torn_bytes += scan.torn_bytes;
                tracing::warn!(
                    path = %path.display(),
                    records = scan.records,
                    torn_bytes = scan.torn_bytes,
                    "skipping the torn tail of a spool segment"
                );
            }
            let acked = acked.min(scan.records);
            let pending = scan.records - acked;
            if pending == 0 {
                let _ = fs::remove_file(&path);
                continue;
            }
            // Bytes of the records to deliver again.
            let mut offset = 0usize;
            let mut skipped = 0;
            while skipped < acked {
                let Some((len, _)) = read_record(&body[offset..]) else {
                    break;
                };
                offset += RECORD_OVERHEAD + len;
                skipped += 1;
            }
            let live = scan.end - HEADER_LEN - offset as u64;
            recovery.events += pending;
            recovery.bytes += live;
            segments.push_back(Segment {
                id,
                path,
                records: scan.records,
                end: scan.end,
                first_index: acked,
                first_seq: next_seq,
                acked,
                done: BTreeMap::new(),
                acked_written: acked,
                sealed: true,
            });
            next_seq += pending;
        }
        let cursor = match segments.front() {
            Some(first) => Cursor {
                segment: first.id,
                index: first.first_index,
                offset: 0,
                file: None,
                file_segment: u64::MAX,
            },
            None => Cursor {
                segment: u64::MAX,
                ..Cursor::default()
            },
        };
        let mut spool = Spool {
            dir,
            config,
            fingerprint,
            key,
            lock,
            state: Mutex::new(State {
                segments,
                next_id: ids.last().map_or(1, |id| id + 1),
                active: None,
                committed_seq: next_seq - 1,
                cursor,
                last_fsync: None,
            }),
            live_bytes: AtomicU64::new(recovery.bytes),
            committed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            syncer: None,
        };
        if spool.config.fsync != FsyncPolicy::Never {
            spool.syncer = Some(Syncer::start()?);
        }
        // Byte offsets of the cursor's first record.
        spool.seek_cursor_start()?;
        Ok((spool, recovery))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn config(&self) -> &SpoolConfig {
        &self.config
    }

    pub(crate) fn key(&self) -> &ApiKey {
        &self.key
    }

    /// Positions a recovered cursor after the acknowledged records.
    fn seek_cursor_start(&mut self) -> io::Result<()> {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let Some(first) = state.segments.front() else {
            return Ok(());
        };
        let bytes = fs::read(&first.path)?;
        let mut offset = HEADER_LEN as usize;
        for _ in 0..first.first_index {
            match read_record(&bytes[offset..]) {
                Some((len, _)) => offset += RECORD_OVERHEAD + len,
                None => break,
            }
        }
        state.cursor.offset = offset as u64;
        Ok(())
    }

    /// Sequence number of the next event to read (one past the newest
    /// committed one when everything is read).
    pub(crate) fn cursor_seq(&self) -> u64 {
        let state = self.state();
        Self::cursor_seq_of(&state)
    }

    fn cursor_seq_of(state: &State) -> u64 {
        for seg in state
            .segments
            .iter()
            .filter(|s| s.id >= state.cursor.segment)
        {
            let from = if seg.id == state.cursor.segment {
                state.cursor.index.max(seg.first_index)
            } else {
                seg.first_index
            };
            if from < seg.records {
                return seg.seq(from);
            }
        }
        state.committed_seq + 1
    }

    /// Committed events not yet read.
    pub(crate) fn readable(&self) -> u64 {
        let state = self.state();
        state
            .segments
            .iter()
            .filter(|s| s.id >= state.cursor.segment)
            .map(|seg| {
                let from = if seg.id == state.cursor.segment {
                    state.cursor.index.max(seg.first_index)
                } else {
                    seg.first_index
                };
                seg.records.saturating_sub(from)
            })
            .sum()
    }

    /// Reads the next batch of up to `max` committed records (never across
    /// segments); `None` when everything committed has been read.
    pub(crate) fn read_batch(&self, max: usize) -> io::Result<Option<SpoolBatch>> {
        let mut state = self.state();
        loop {
            let wanted = state.cursor.segment;
            let Some(pos) = state.segments.iter().position(|s| s.id >= wanted) else {
                return Ok(None);
            };
            let seg = &state.segments[pos];
            if seg.id != wanted {
                // The cursor's segment is gone or done: start on this one.
                let offset = if seg.first_index == 0 {
                    HEADER_LEN
                } else {
                    offset_of(&seg.path, seg.first_index)?
                };
                state.cursor = Cursor {
                    segment: seg.id,
                    index: seg.first_index,
                    offset,
                    file: None,
                    file_segment: u64::MAX,
                };
                continue;
            }
            if state.cursor.index >= seg.records {
                if seg.sealed && pos + 1 < state.segments.len() {
                    // Everything here is read: on to the next segment.
                    let next = &state.segments[pos + 1];
                    let offset = if next.first_index == 0 {
                        HEADER_LEN
                    } else {
                        offset_of(&next.path, next.first_index)?
                    };
                    state.cursor = Cursor {
                        segment: next.id,
                        index: next.first_index,
                        offset,
                        file: None,
                        file_segment: u64::MAX,
                    };
                    continue;
                }
                return Ok(None);
            }
            let (id, end, path) = (seg.id, seg.end, seg.path.clone());
            let count = (seg.records - state.cursor.index).min(max as u64);
            let first_seq = seg.seq(state.cursor.index);
            let key = self.key.clone();
            let cursor = &mut state.cursor;
            if cursor.file_segment != id || cursor.file.is_none() {
                cursor.file = Some(File::open(&path)?);
                cursor.file_segment = id;
            }
            let Some(file) = cursor.file.as_mut() else {
                return Ok(None);
            };
            file.seek(SeekFrom::Start(cursor.offset))?;
            let mut chunk = Chunk::with_capacity(count as usize, 0);
            chunk.key = Some(key);
            chunk.first_seq = first_seq;
            let mut offset = cursor.offset;
            let mut head = [0u8; RECORD_OVERHEAD];
            for _ in 0..count {
                if offset + RECORD_OVERHEAD as u64 > end {
                    break;
                }
                file.read_exact(&mut head)?;
                let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                let start = chunk.bytes.len();
                chunk.bytes.resize(start + len, 0);
                file.read_exact(&mut chunk.bytes[start..])?;
                let payload = &chunk.bytes[start..];
                let mut check = super::crc32c::Crc32c::new();
                check.update(&head[..4]);
                check.update(payload);
                let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                if check.finish() != crc || std::str::from_utf8(payload).is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("damaged record in {}", path.display()),
                    ));
                }
                chunk.ends.push(chunk.bytes.len() as u32);
                offset += (RECORD_OVERHEAD + len) as u64;
            }
            let read = chunk.ends.len() as u64;
            if read == 0 {
                return Ok(None);
            }
            let record_bytes = offset - cursor.offset;
            let index = cursor.index;
            cursor.index += read;
            cursor.offset = offset;
            return Ok(Some(SpoolBatch {
                segment: id,
                index,
                chunk,
                record_bytes,
            }));
        }
    }

    /// Gives up on the rest of the segment under the cursor after a read
    /// failed (a record damaged after it was written, or the file removed
    /// by someone else): its unread records are marked resolved and the
    /// segment is sealed. Returns how many events were skipped.
    pub(crate) fn skip_damaged(&self) -> u64 {
        let (segment, index, skipped, bytes) = {
            let mut state = self.state();
            let State {
                segments,
                cursor,
                active,
                ..
            } = &mut *state;
            let Some(pos) = segments.iter().position(|s| s.id == cursor.segment) else {
                return 0;
            };
            let last = pos + 1 == segments.len();
            let seg = &mut segments[pos];
            let skipped = seg.records.saturating_sub(cursor.index);
            let bytes = seg.end.saturating_sub(cursor.offset);
            seg.sealed = true;
            if last {
                *active = None;
            }
            let index = cursor.index;
            cursor.index += skipped;
            cursor.offset = seg.end;
            cursor.file = None;
            (seg.id, index, skipped, bytes)
        };
        if skipped > 0 {
            self.resolve(segment, index, skipped, bytes);
        }
        skipped
    }

    /// Marks `count` records from `index` of `segment` resolved (delivered
    /// or dead-lettered); deletes the segment when all of it is.
    pub(crate) fn resolve(&self, segment: u64, index: u64, count: u64, record_bytes: u64) {
        self.live_bytes.fetch_sub(record_bytes, Ordering::Relaxed);
        let finished = {
            let mut state = self.state();
            let Some(pos) = state.segments.iter().position(|s| s.id == segment) else {
                return;
            };
            state.segments[pos].resolve(index, index + count);
            if state.segments[pos].finished() {
                state.segments.remove(pos)
            } else {
                None
            }
        };
        if let Some(seg) = finished
            && let Err(e) = fs::remove_file(&seg.path)
        {
            tracing::warn!(path = %seg.path.display(), error = %e, "could not remove a delivered spool segment");
        }
    }

    /// Writes the events of `chunks` (oldest first, sequence numbers
    /// contiguous after the last committed one) to the active segment,
    /// rotating segments as needed, and syncs per the policy. Returns how
    /// many events (from the first) are committed, and the error that
    /// stopped it early, if any. A segment a write failed on is sealed, so
    /// a later commit never appends after a partial record.
    pub(crate) fn commit(&self, chunks: &[Chunk], buf: &mut Vec<u8>) -> (u64, Option<io::Error>) {
        let mut committed = 0u64;
        let mut bytes_total = 0u64;
        let mut failure = None;
        {
            let mut state = self.state();
            let mut events = chunks.iter().flat_map(|c| c.events()).peekable();
            while events.peek().is_some() {
                if state.active.is_none()
                    && let Err(e) = self.start_segment(&mut state)
                {
                    failure = Some(e);
                    break;
                }
                let room = state
                    .segments
                    .back()
                    .map_or(0, |seg| self.config.segment_bytes.saturating_sub(seg.end));
                buf.clear();
                let mut n = 0u64;
                while let Some(event) = events.peek() {
                    let size = (RECORD_OVERHEAD + event.len()) as u64;
                    // At least one record per write, however large.
                    if n > 0 && buf.len() as u64 + size > room {
                        break;
                    }
                    encode_record(buf, event);
                    events.next();
                    n += 1;
                }
                let written = match state.active.as_mut() {
                    Some(file) => file.write_all(buf),
                    None => Err(io::Error::other("no active spool segment")),
                };
                if let Err(e) = written {
                    state.active = None;
                    if let Some(seg) = state.segments.back_mut() {
                        seg.sealed = true;
                    }
                    failure = Some(e);
                    break;
                }
                let first_seq = state.committed_seq + 1;
                if let Some(seg) = state.segments.back_mut() {
                    if seg.records == 0 {
                        seg.first_seq = first_seq;
                    }
                    seg.records += n;
                    seg.end += buf.len() as u64;
                }
                state.committed_seq += n;
                committed += n;
                bytes_total += buf.len() as u64;
                if state
                    .segments
                    .back()
                    .is_some_and(|seg| seg.end >= self.config.segment_bytes)
                    && let Err(e) = self.seal_active(&mut state)
                {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.live_bytes.fetch_add(bytes_total, Ordering::Relaxed);
        self.committed.fetch_add(committed, Ordering::Relaxed);
        if failure.is_none()
            && let Err(e) = self.sync_if_due(committed > 0)
        {
            failure = Some(e);
        }
        (committed, failure)
    }

    /// Writes changed ack counts into segment headers.
    pub(crate) fn write_acks(&self) -> io::Result<()> {
        let updates: Vec<(PathBuf, u64)> = {
            let mut state = self.state();
            state
                .segments
                .iter_mut()
                .filter(|s| s.acked != s.acked_written)
                .map(|s| {
                    s.acked_written = s.acked;
                    (s.path.clone(), s.acked)
                })
                .collect()
        };
        for (path, acked) in updates {
            let file = OpenOptions::new().write(true).open(&path);
            match file {
                Ok(file) => write_at(&file, ACK_OFFSET, &ack_block(&self.fingerprint, acked))?,
                // Deleted meanwhile: nothing to record.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Final work at stop: ack counts written, segments synced, the
    /// directory unlocked.
    pub(crate) fn close(&self) -> io::Result<()> {
        self.write_acks()?;
        if let Some(syncer) = &self.syncer {
            syncer.wait_idle();
        }
        let mut state = self.state();
        if let Some(file) = state.active.as_mut()
            && self.config.fsync != FsyncPolicy::Never
        {
            file.sync_data()?;
        }
        state.active = None;
        drop(state);
        // Another buffer may use the directory now, even while handles on
        // this stopped one linger.
        self.lock.unlock()
    }

    /// Asks the sync thread to sync the active segment when the policy says
    /// so; the commit thread goes on at once.
    fn sync_if_due(&self, wrote: bool) -> io::Result<()> {
        let Some(syncer) = &self.syncer else {
            return Ok(());
        };
        let mut state = self.state();
        let due = match self.config.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::EveryCommit => wrote,
            FsyncPolicy::Interval(every) => {
                wrote && state.last_fsync.is_none_or(|t| t.elapsed() >= every)
            }
        };
        if due {
            let Some(id) = state.segments.back().map(|s| s.id) else {
                return Ok(());
            };
            if let Some(file) = state.active.as_ref() {
                syncer.request(id, file.try_clone()?);
            }
            state.last_fsync = Some(Instant::now());
        }
        if let Some(e) = syncer.take_error() {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "could not sync the event spool to the disk");
        }
        Ok(())
    }

    fn start_segment(&self, state: &mut State) -> io::Result<()> {
        let id = state.next_id;
        let path = segment_path(&self.dir, id);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(&header(&self.fingerprint))?;
        if self.config.fsync != FsyncPolicy::Never {
            file.sync_all()?;
            sync_dir(&self.dir);
        }
        state.next_id += 1;
        state.segments.push_back(Segment {
            id,
            path,
            records: 0,
            end: HEADER_LEN,
            first_index: 0,
            first_seq: state.committed_seq + 1,
            acked: 0,
            done: BTreeMap::new(),
            acked_written: 0,
            sealed: false,
        });
        if state.cursor.segment == u64::MAX {
            state.cursor = Cursor {
                segment: id,
                index: 0,
                offset: HEADER_LEN,
                file: None,
                file_segment: u64::MAX,
            };
        }
        state.active = Some(file);
        Ok(())
    }

    fn seal_active(&self, state: &mut State) -> io::Result<()> {
        let closed = state.active.take();
        if let (Some(syncer), Some(file), Some(id)) =
            (&self.syncer, closed, state.segments.back().map(|s| s.id))
        {
            syncer.request(id, file);
        }
        let finished = match state.segments.back_mut() {
            Some(seg) => {
                seg.sealed = true;
                seg.finished()
            }
            None => false,
        };
        if finished && let Some(seg) = state.segments.pop_back() {
            let _ = fs::remove_file(&seg.path);
        }
        Ok(())
    }

    /// Events committed and not yet resolved, in all segments.
    pub(crate) fn unresolved(&self) -> u64 {
        let state = self.state();
        state
            .segments
            .iter()
            .map(|s| {
                let done: u64 = s.done.iter().map(|(a, b)| b - a).sum();
                s.records - s.acked.max(s.first_index) - done
            })
            .sum()
    }
}

/// A thread that syncs segment files to the disk, so that a slow `fsync`
/// delays neither the next commit (what a crash can lose stays one commit
/// interval) nor delivery (the spool's lock is not held while syncing).
/// Requests for a file already waiting are merged: one `fsync` covers
/// everything written before it starts.
#[derive(Debug)]
struct Syncer {
    shared: Arc<SyncShared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct SyncShared {
    state: Mutex<SyncState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    files: Vec<(u64, File)>,
    busy: bool,
    stop: bool,
    error: Option<io::Error>,
}

impl SyncShared {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Syncer {
    fn start() -> io::Result<Syncer> {
        let shared = Arc::new(SyncShared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("flagwire-events-fsync".into())
            .spawn(move || sync_loop(&worker))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    fn request(&self, segment: u64, file: File) {
        let mut st = self.shared.lock();
        if !st.files.iter().any(|(id, _)| *id == segment) {
            st.files.push((segment, file));
        }
        drop(st);
        self.shared.cv.notify_all();
    }

    fn take_error(&self) -> Option<io::Error> {
        self.shared.lock().error.take()
    }

    /// Waits until every requested sync is done.
    fn wait_idle(&self) {
        let mut st = self.shared.lock();
        while !st.files.is_empty() || st.busy {
            st = self
                .shared
                .cv
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn sync_loop(shared: &SyncShared) {
    let mut st = shared.lock();
    loop {
        while st.files.is_empty() && !st.stop {
            st = shared.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        if st.files.is_empty() {
            return;
        }
        let files = std::mem::take(&mut st.files);
        st.busy = true;
        drop(st);
        let mut error = None;
        for (_, file) in &files {
            if let Err(e) = file.sync_data() {
                error = Some(e);
            }
        }
        drop(files);
        st = shared.lock();
        st.busy = false;
        if error.is_some() {
            st.error = error;
        }
        shared.cv.notify_all();
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:016x}.log"))
}

/// The ack count and the body of a segment whose header is ours.
fn parse_header<'a>(bytes: &'a [u8], fingerprint: &[u8; 8]) -> Option<(u64, &'a [u8])> {
    let header = bytes.get(..HEADER_LEN as usize)?;
    if &header[..8] != MAGIC
        || u32::from_le_bytes(header[8..12].try_into().ok()?) != VERSION
        || &header[12..20] != fingerprint
    {
        return None;
    }
    let ack = &header[ACK_OFFSET as usize..ACK_OFFSET as usize + 16];
    let acked = u64::from_le_bytes(ack[..8].try_into().ok()?);
    // A torn ack update counts as nothing acknowledged: events are sent
    // again (deduplicated by key) rather than skipped.
    let acked = if ack[..12] == ack_block(fingerprint, acked)[..12] {
        acked
    } else {
        0
    };
    Some((acked, &bytes[HEADER_LEN as usize..]))
}

/// Byte offset of record `index` in the segment at `path`.
fn offset_of(path: &Path, index: u64) -> io::Result<u64> {
    let bytes = fs::read(path)?;
    let mut offset = HEADER_LEN as usize;
    for _ in 0..index {
        match read_record(bytes.get(offset..).unwrap_or_default()) {
            Some((len, _)) => offset += RECORD_OVERHEAD + len,
            None => break,
        }
    }
    Ok(offset as u64)
}

#[cfg(unix)]
fn write_at(file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn write_at(mut file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Makes a new or removed directory entry durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payload(i: usize, text: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"n": i, "s": text})).unwrap()
    }

    proptest! {
        #[test]
        fn records_read_back_whole_and_any_cut_is_a_torn_tail(
            texts in proptest::collection::vec(".{0,40}", 1..20),
            cut in 0usize..4000,
        ) {
            let payloads: Vec<Vec<u8>> = texts.iter().enumerate().map(|(i, t)| payload(i, t)).collect();
            let mut body = Vec::new();
            let mut ends = Vec::new();
            for p in &payloads {
                encode_record(&mut body, p);
                ends.push(body.len());
            }
            let whole = scan_records(&body);
            prop_assert_eq!(whole.records, payloads.len() as u64);
            prop_assert_eq!(whole.torn_bytes, 0);
            prop_assert_eq!(whole.end, HEADER_LEN + body.len() as u64);
            // Reading back gives the payloads.
            let mut at = 0;
            for p in &payloads {
                let (len, read) = read_record(&body[at..]).unwrap();
                prop_assert_eq!(read, &p[..]);
                at += RECORD_OVERHEAD + len;
            }
            // A cut anywhere keeps the whole records before it.
            let cut = cut.min(body.len());
            let scan = scan_records(&body[..cut]);
            let kept = ends.iter().filter(|&&e| e <= cut).count();
            prop_assert_eq!(scan.records, kept as u64);
            let kept_end = if kept == 0 { 0 } else { ends[kept - 1] };
            prop_assert_eq!(scan.torn_bytes, (cut - kept_end) as u64);
        }

        #[test]
        fn a_flipped_bit_never_passes_as_a_record(
            text in ".{0,60}",
            bit in 0usize..800,
        ) {
            let mut body = Vec::new();
            encode_record(&mut body, &payload(7, &text));
            let bit = bit % (body.len() * 8);
            body[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(scan_records(&body).records, 0);
        }

        #[test]
        fn resolved_ranges_advance_the_ack_count_in_any_order(
            sizes in proptest::collection::vec(1u64..7, 1..30),
            seed in any::<u64>(),
        ) {
            let mut ranges = Vec::new();
            let mut start = 0;
            for s in &sizes {
                ranges.push((start, start + s));
                start += s;
            }
            let total = start;
            let mut order = ranges.clone();
            fastrand::Rng::with_seed(seed).shuffle(&mut order);
            let mut seg = Segment {
                id: 1,
                path: PathBuf::new(),
                records: total,
                end: 0,
                first_index: 0,
                first_seq: 1,
                acked: 0,
                done: BTreeMap::new(),
                acked_written: 0,
                sealed: true,
            };
            let mut resolved = vec![false; total as usize];
            for (a, b) in order {
                seg.resolve(a, b);
                for i in a..b {
                    resolved[i as usize] = true;
                }
                let prefix = resolved.iter().take_while(|r| **r).count() as u64;
                prop_assert_eq!(seg.acked, prefix);
            }
            prop_assert!(seg.finished());
            prop_assert!(seg.done.is_empty());
        }
    }

    #[test]
    fn the_ack_block_detects_a_torn_update() {
        let fp = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut h = header(&fp).to_vec();
        h[ACK_OFFSET as usize..ACK_OFFSET as usize + 16].copy_from_slice(&ack_block(&fp, 42));
        assert_eq!(parse_header(&h, &fp).map(|(a, _)| a), Some(42));
        // Half of a new count written: it counts as nothing acknowledged.
        h[ACK_OFFSET as usize] = 43;
        assert_eq!(parse_header(&h, &fp).map(|(a, _)| a), Some(0));
        // Another key's segment is not read at all.
        assert!(parse_header(&h, &[0; 8]).is_none());
        assert!(parse_header(&h[..40], &fp).is_none());
    }
}
