//! Decoding of `struct open_event` (bpf/opensnoop.h) from ring-buffer bytes.

use crate::types::{open_event, AT_FDCWD_VALUE, OPEN_PATH_LEN, OPEN_PATH_TRUNCATED, OPEN_PATH_UNREAD, SC_CREAT, SC_OPEN, SC_OPENAT, SC_OPENAT2, SC_UNKNOWN};

pub const PATH_LEN: usize = OPEN_PATH_LEN as usize;
const PATH_OFF: usize = std::mem::offset_of!(open_event, path);
/// `sizeof(struct open_event)`: the longest record. Records end after the
/// path's NUL, so most are much shorter (at least `MIN_RECORD_SIZE`).
pub const RECORD_SIZE: usize = std::mem::size_of::<open_event>();
/// A record with an empty path (just its NUL).
pub const MIN_RECORD_SIZE: usize = PATH_OFF + 1;
/// `path_flags` bits (opensnoop.h).
pub const PATH_TRUNCATED: u8 = OPEN_PATH_TRUNCATED as u8;
pub const PATH_UNREAD: u8 = OPEN_PATH_UNREAD as u8;
/// The `dirfd` that means "relative to the current directory".
pub const AT_FDCWD: i32 = AT_FDCWD_VALUE;

/// A task name as the kernel gave it (at most 15 bytes), kept inline: decoding
/// a record, keeping it in the recent list or counting it per process
/// allocates nothing for the name. Ordered like the names (the padding is NUL).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
}

impl Comm {
    /// The bytes up to the first NUL (at most 16).
    pub fn from_bytes(b: &[u8]) -> Self {
        let b = &b[..b.len().min(16)];
        let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let mut bytes = [0u8; 16];
        bytes[..len].copy_from_slice(&b[..len]);
        Comm { bytes, len: len as u8 }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    /// Invalid UTF-8 is replaced (only then is anything allocated).
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl From<&str> for Comm {
    fn from(s: &str) -> Self {
        Comm::from_bytes(&s.as_bytes()[..s.len().min(15)])
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRecord {
    pub ts_ns: u64,
    pub flags: u64,
    pub ret: i64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub euid: u32,
    pub mode: u32,
    pub syscall: Syscall,
    pub comm: Comm,
    /// The name as the process passed it (invalid UTF-8 replaced; see
    /// `path_hex`), copied at entry.
    pub path: String,
    /// Hex of the name's bytes when they are not valid UTF-8, so the exact
    /// name can be recovered.
    pub path_hex: Option<String>,
    pub path_flags: u8,
    pub dirfd: i32,
}

impl Default for OpenRecord {
    fn default() -> Self {
        OpenRecord {
            ts_ns: 0,
            flags: 0,
            ret: 0,
            pid: 0,
            tid: 0,
            uid: 0,
            euid: 0,
            mode: 0,
            syscall: Syscall::Unknown,
            comm: Comm::default(),
            path: String::new(),
            path_hex: None,
            path_flags: 0,
            dirfd: AT_FDCWD,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// do_sys_openat2 reached from no open syscall (io_uring), on the
    /// fentry and kprobe paths.
    Unknown,
    Openat,
    Openat2,
    Open,
    Creat,
}

impl Syscall {
    fn from_u8(v: u8) -> Self {
        match v as u32 {
            SC_OPENAT => Syscall::Openat,
            SC_OPENAT2 => Syscall::Openat2,
            SC_OPEN => Syscall::Open,
            SC_CREAT => Syscall::Creat,
            _ => Syscall::Unknown,
        }
    }

    fn to_u8(self) -> u8 {
        (match self {
            Syscall::Unknown => SC_UNKNOWN,
            Syscall::Openat => SC_OPENAT,
            Syscall::Openat2 => SC_OPENAT2,
            Syscall::Open => SC_OPEN,
            Syscall::Creat => SC_CREAT,
        }) as u8
    }
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Unknown => "open*",
            Syscall::Openat => "openat",
            Syscall::Openat2 => "openat2",
            Syscall::Open => "open",
            Syscall::Creat => "creat",
        }
    }
}


impl OpenRecord {
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        // Records end after the path's NUL: the rest of the buffer reads as 0.
        let e: open_event = tracer_plugin_kit::read_prefix(b, MIN_RECORD_SIZE)
            .ok_or_else(|| format!("open record too short: {} bytes, expected at least {MIN_RECORD_SIZE}", b.len()))?;
        let path = &e.path[..e.path.iter().position(|&c| c == 0).unwrap_or(PATH_LEN)];
        // Checked once: valid UTF-8 (the usual case) is taken as it is;
        // otherwise shown with U+FFFD, and the exact bytes kept in hex.
        let (path, path_hex) = match std::str::from_utf8(path) {
            Ok(s) => (s.to_owned(), None),
            Err(_) => (String::from_utf8_lossy(path).into_owned(), Some(path.iter().map(|c| format!("{c:02x}")).collect())),
        };
        Ok(OpenRecord {
            ts_ns: e.ts_ns,
            flags: e.flags,
            ret: e.ret,
            pid: e.pid,
            tid: e.tid,
            uid: e.uid,
            mode: e.mode,
            syscall: Syscall::from_u8(e.syscall),
            path_flags: e.path_flags,
            dirfd: e.dirfd,
            euid: e.euid,
            comm: Comm::from_bytes(&e.comm),
            path,
            path_hex,
        })
    }

    pub fn truncated(&self) -> bool {
        self.path_flags & PATH_TRUNCATED != 0
    }

    /// Whether the name could not be read from the process at entry.
    pub fn unread(&self) -> bool {
        self.path_flags & PATH_UNREAD != 0
    }

    /// A relative name's directory, where it is not the current one.
    pub fn dirfd_shown(&self) -> Option<i32> {
        (!self.path.starts_with('/') && !self.unread() && self.dirfd != AT_FDCWD).then_some(self.dirfd)
    }

    /// The path as panels show it: `[fd 3]/name` for a name relative to a
    /// directory fd, `…` at the end of a cut one, `(unreadable)` for one that
    /// could not be read.
    pub fn display_path(&self) -> std::borrow::Cow<'_, str> {
        if self.unread() {
            return "(unreadable)".into();
        }
        if self.dirfd_shown().is_none() && !self.truncated() {
            return self.path.as_str().into(); // the common case: no allocation
        }
        let mut s = match self.dirfd_shown() {
            Some(fd) => format!("[fd {fd}]/{}", self.path),
            None => self.path.clone(),
        };
        if self.truncated() {
            s.push('…');
        }
        s.into()
    }

    /// The inverse of [`decode`](Self::decode), for tests and fuzzing.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = open_event {
            ts_ns: self.ts_ns,
            flags: self.flags,
            ret: self.ret,
            pid: self.pid,
            tid: self.tid,
            uid: self.uid,
            mode: self.mode,
            syscall: self.syscall.to_u8(),
            path_flags: self.path_flags,
            dirfd: self.dirfd,
            euid: self.euid,
            ..Default::default()
        };
        let comm = self.comm.as_bytes();
        let n = comm.len().min(15);
        e.comm[..n].copy_from_slice(&comm[..n]);
        let path = self.path.as_bytes();
        let n = path.len().min(PATH_LEN - 1);
        e.path[..n].copy_from_slice(&path[..n]);
        tracer_plugin_kit::bytes_of(&e).to_vec()
    }

    pub fn failed(&self) -> bool {
        self.ret < 0
    }
}

/// `O_RDONLY|O_CREAT|...` for the flags of open(2) on Linux (x86_64/arm64 values).
pub fn flags_text(flags: u64) -> String {
    const NAMES: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o20000, "O_ASYNC"),
        (0o40000, "O_DIRECT"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o4000000, "O_SYNC"),
        (0o10000000, "O_PATH"),
        (0o20200000, "O_TMPFILE"),
    ];
    let mut out = String::from(match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    });
    let mut rest = flags & !3;
    // Highest bits first: O_TMPFILE includes O_DIRECTORY's bit and must win.
    for &(bit, name) in NAMES.iter().rev() {
        if rest & bit == bit && bit != 0 {
            out.push('|');
            out.push_str(name);
            rest &= !bit;
        }
    }
    // O_LARGEFILE (0o100000) is set by the kernel on 64-bit: not worth showing.
    rest &= !0o100000;
    if rest != 0 {
        out.push_str(&format!("|0x{rest:x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_stops_at_nul_or_16_bytes_and_replaces_bad_utf8() {
        assert_eq!(Comm::from_bytes(b"cat\0junk").as_str(), "cat");
        assert_eq!(Comm::from_bytes(b"0123456789abcdefXYZ").as_bytes(), b"0123456789abcdef");
        assert_eq!(Comm::from_bytes(b"a\xffb\0").as_str(), "a\u{fffd}b");
        assert_eq!(Comm::from("sh"), Comm::from_bytes(b"sh\0\0"));
    }

    fn sample() -> OpenRecord {
        OpenRecord {
            ts_ns: 123,
            flags: 0o2000101,
            ret: -2,
            pid: 42,
            tid: 43,
            uid: 1000,
            mode: 0o644,
            syscall: Syscall::Openat,
            comm: "cat".into(),
            path: "/etc/hosts".into(),
            euid: 1001,
            ..Default::default()
        }
    }

    #[test]
    fn truncation_relative_names_and_bad_utf8_are_marked() {
        let mut r = sample();
        r.path = "rel".into();
        r.dirfd = 7;
        r.path_flags = PATH_TRUNCATED;
        let d = OpenRecord::decode(&r.encode()).unwrap();
        assert_eq!((d.dirfd, d.euid, d.truncated(), d.unread()), (7, 1001, true, false));
        assert_eq!(d.display_path(), "[fd 7]/rel…");
        r.dirfd = AT_FDCWD;
        r.path_flags = 0;
        assert_eq!(OpenRecord::decode(&r.encode()).unwrap().display_path(), "rel");
        r.path_flags = PATH_UNREAD;
        assert_eq!(OpenRecord::decode(&r.encode()).unwrap().display_path(), "(unreadable)");
        let mut b = sample().encode();
        b[PATH_OFF..PATH_OFF + 5].copy_from_slice(b"/\xff\xfex\0");
        let d = OpenRecord::decode(&b).unwrap();
        assert_eq!(d.path_hex.as_deref(), Some("2ffffe78"));
        assert_eq!(OpenRecord::decode(&sample().encode()).unwrap().path_hex, None);
    }

    #[test]
    fn decode_inverts_encode() {
        let r = sample();
        assert_eq!(OpenRecord::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn short_record_is_an_error() {
        let e = OpenRecord::decode(&[0u8; PATH_OFF]).unwrap_err();
        assert!(e.contains("too short"), "{e}");
    }

    #[test]
    fn a_record_ends_after_its_path() {
        let full = sample().encode();
        let n = PATH_OFF + "/etc/hosts".len() + 1;
        assert_eq!(OpenRecord::decode(&full[..n]).unwrap(), sample());
        // Without even the NUL (a writer's mistake): the bytes there are the path.
        assert_eq!(OpenRecord::decode(&full[..n - 1]).unwrap().path, "/etc/hosts");
    }

    #[test]
    fn unterminated_and_invalid_utf8_paths_decode() {
        let mut b = sample().encode();
        for x in &mut b[PATH_OFF..PATH_OFF + PATH_LEN] {
            *x = 0xff;
        }
        let r = OpenRecord::decode(&b).unwrap();
        assert_eq!(r.path.chars().count(), PATH_LEN);
    }

    #[test]
    fn flags_are_named() {
        assert_eq!(flags_text(0), "O_RDONLY");
        assert_eq!(flags_text(0o2000101), "O_WRONLY|O_CLOEXEC|O_CREAT");
        assert_eq!(flags_text(0o100000 | 2), "O_RDWR");
        assert_eq!(flags_text(0o20200000), "O_RDONLY|O_TMPFILE");
        assert_eq!(flags_text(1 << 40), "O_RDONLY|0x10000000000");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes from a ring buffer: a record or an error, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = OpenRecord::decode(&b);
            let _ = flags_text(b.len() as u64 * 0x9e37_79b9);
        }

        #[test]
        fn encode_then_decode_is_identity(
            ts in any::<u64>(), flags in any::<u64>(), ret in any::<i64>(), pid in any::<u32>(), tid in any::<u32>(),
            uid in any::<u32>(), mode in any::<u32>(), comm in "[a-z0-9_-]{0,15}", path in "[ -~]{0,255}",
        ) {
            let r = OpenRecord { ts_ns: ts, flags, ret, pid, tid, uid, mode, syscall: Syscall::Openat2, comm: comm.as_str().into(), path, ..Default::default() };
            prop_assert_eq!(OpenRecord::decode(&r.encode()).unwrap(), r);
        }
    }
}
