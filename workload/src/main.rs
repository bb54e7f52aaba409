//! tracer-workload: controlled, countable work for tests and benchmarks.
//!
//!   tracer-workload [--comm NAME] getppid N          N getppid(2) calls
//!   tracer-workload [--comm NAME] open PATH N        N open+close of PATH
//!   tracer-workload [--comm NAME] sleeps N MS        N nanosleep(2) calls of MS ms,
//!                                  each followed by a getppid(2)
//!   tracer-workload [--comm NAME] tcp4|tcp6 PORT N BYTES
//!                                  N loopback connections to PORT; the client
//!                                  sends BYTES, the server answers BYTES/2 and
//!                                  closes first; the server thread is named
//!                                  `tcpserver`
//!   tracer-workload [--comm NAME] tcp4c|tcp6c PORT N BYTES
//!                                  the same, but the client closes first
//!   tracer-workload [--comm NAME] pingpong N         two threads bounce a byte
//!                                  N times over a pair of pipes
//!   tracer-workload [--comm NAME] churn DIR N        N short-lived children, one
//!                                  after another; child i calls getppid and
//!                                  opens DIR/i (a new pid and a new path each:
//!                                  fills every per-process and per-file table)
//!   tracer-workload exit CODE [ARGS...]              exit with CODE at once (an
//!                                  exec with known arguments and status)
//!   tracer-workload [--comm NAME] dio PATH read|write|fsync SIZE N
//!                                  N O_DIRECT reads or writes of SIZE bytes
//!                                  (a multiple of 4096) at offsets 0, SIZE, ...
//!                                  of PATH (a block device or file), or N
//!                                  fsync(2) calls on it
//!   tracer-workload [--comm NAME] faults ANON_PAGES FILE FILE_PAGES
//!                                  touches ANON_PAGES fresh anonymous pages
//!                                  (no huge pages: one fault each), then
//!                                  writes FILE (FILE_PAGES pages), drops it
//!                                  from the page cache and reads one byte
//!                                  per page through a MADV_RANDOM mapping
//!                                  (no readahead: a major fault each); prints
//!                                  `faults MINFLT MAJFLT` from /proc/self/stat
//!                                  after the `done` line
//!   tracer-workload [--comm NAME] pipes N CLOSE [WRITE]
//!                                  makes N pipes, writes WRITE bytes (default
//!                                  0) into each, closes the first CLOSE, holds
//!                                  the rest until a line comes on stdin
//!   tracer-workload [--comm NAME] leaks N FREE
//!                                  known allocations held at known functions,
//!                                  between two lines read from stdin (see leaks)
//!   tracer-workload [--comm NAME] pagecache write|sync|drop|read PATH PAGES
//!                                  one page cache step on PAGES pages of PATH
//!                                  (see page_cache); prints the kernel's
//!                                  cached and dirty pages before and after
//!   tracer-workload [--comm NAME] preads PATH SIZE N
//!                                  writes SIZE bytes to PATH, then N pread(2)s
//!                                  of them at offset 0 (page cache hits)
//!   tracer-workload fileio PATH N SIZE WINDOW_COMM
//!                                  known reads, writes and syncs of PATH
//!                                  under the task name WINDOW_COMM only,
//!                                  framed by two reads of /proc/self/io;
//!                                  prints `fileio RCHAR WCHAR SYSCR SYSCW
//!                                  IO1_BYTES ELAPSED_NS` (see file_io) before
//!                                  the `done` line
//!   tracer-workload [--comm NAME] alloc MIB          allocates and touches MIB MiB,
//!                                  1 MiB at a time, keeping all of it (in a
//!                                  memory cgroup with a smaller limit: an OOM
//!                                  kill of a known victim)
//!   tracer-workload [--comm NAME] execs N            N children, one after
//!                                  another, each an exec of this program that
//!                                  exits at once (fork + exec + exit + wait)
//!
//! `--comm` sets the task name (prctl PR_SET_NAME) first, so a tracer can be
//! checked for the right comm. Prints `done ELAPSED_NS OPS VOLUNTARY INVOLUNTARY
//! RUN_NS WAIT_NS` on stdout: the process's context switches from getrusage and
//! its time on a CPU and in a run queue from /proc/self/schedstat (spin and
//! pingpong; 0 0 for the others, which must not open anything), for checking
//! a scheduler tracer against the kernel's own accounting.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

fn set_comm(name: &str) {
    let c = std::ffi::CString::new(name).expect("comm without NUL");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

fn num(s: Option<&String>, what: &str) -> u64 {
    s.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(&format!("{what} must be a number")))
}

fn usage(msg: &str) -> ! {
    eprintln!("tracer-workload: {msg}\nusage: tracer-workload [--comm NAME] getppid N | sleeps N MS | open PATH N | tcp4|tcp6|tcp4c|tcp6c PORT N BYTES | tcpresets CLOSED_PORT PORT | spin SECS | pingpong N | churn DIR N | dio PATH read|write|fsync SIZE N");
    std::process::exit(2);
}

fn getppid(n: u64) {
    for _ in 0..n {
        // SAFETY: no arguments, no memory.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

/// O_DIRECT I/O of known sizes: each call one request to the device (for
/// sizes within the device's max request size).
fn direct_io(path: &str, op: &str, size: usize, n: u64) {
    let c = std::ffi::CString::new(path).unwrap();
    let flags = match op {
        "read" => libc::O_RDONLY | libc::O_DIRECT,
        "write" => libc::O_WRONLY | libc::O_DIRECT,
        "fsync" => libc::O_WRONLY,
        _ => usage("dio: OP is read, write or fsync"),
    };
    if size == 0 || !size.is_multiple_of(4096) {
        usage("dio: SIZE must be a multiple of 4096");
    }
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        eprintln!("tracer-workload: open {path}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    let layout = std::alloc::Layout::from_size_align(size, 4096).unwrap();
    // SAFETY: a non-zero size; freed below.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    for i in 0..n {
        let off = (i as usize * size) as libc::off_t;
        // SAFETY: buf holds size bytes, aligned for O_DIRECT.
        let r = unsafe {
            match op {
                "read" => libc::pread(fd, buf as *mut libc::c_void, size, off),
                "write" => libc::pwrite(fd, buf as *const libc::c_void, size, off),
                _ => libc::fsync(fd) as isize,
            }
        };
        if r < 0 || (op != "fsync" && r as usize != size) {
            eprintln!("tracer-workload: {op} {path} at {off}: {r} ({})", std::io::Error::last_os_error());
            std::process::exit(1);
        }
    }
    // SAFETY: allocated above with this layout; fd is ours.
    unsafe {
        std::alloc::dealloc(buf, layout);
        libc::close(fd);
    }
}

/// /proc/self/io's counters from one read(2) of it: rchar, wchar, syscr,
/// syscw, and the bytes that read returned.
fn io_counters(fd: i32, buf: &mut [u8]) -> ([u64; 4], usize) {
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert!(n > 0, "reading /proc/self/io: {}", std::io::Error::last_os_error());
    let text = String::from_utf8_lossy(&buf[..n as usize]);
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)?.trim().parse().ok()).unwrap_or(0);
    ([get("rchar:"), get("wchar:"), get("syscr:"), get("syscw:")], n as usize)
}

/// File I/O of known counts under the name `window` only: N write(2)s of
/// SIZE, one writev(2) of 2 x SIZE, one pwrite(2), fsync, fdatasync, N
/// pread(2)s, one readv(2) of 2 x SIZE and one read(2) at the end of the file
/// (returns 0), framed by two reads of /proc/self/io. Prints `fileio RCHAR
/// WCHAR SYSCR SYSCW IO1_BYTES ELAPSED_NS`: the kernel's deltas between the
/// two reads, what the second one returned (it is traced but not in the
/// deltas) and the window's own duration.
fn file_io(path: &str, n: u64, size: usize, window: &str) {
    let c = std::ffi::CString::new(path).unwrap();
    // SAFETY: valid NUL-terminated paths; the fds are closed at exit.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC, 0o600) };
    assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
    let io = unsafe { libc::open(c"/proc/self/io".as_ptr(), libc::O_RDONLY) };
    assert!(io >= 0, "open /proc/self/io: {}", std::io::Error::last_os_error());
    let mut buf = vec![0x5au8; 2 * size];
    let mut iobuf = [0u8; 4096];
    let check = |r: isize, want: usize, what: &str| assert_eq!(r, want as isize, "{what}: {}", std::io::Error::last_os_error());
    set_comm(window);
    let start = Instant::now();
    let (before, _) = io_counters(io, &mut iobuf);
    // SAFETY (all calls below): buffers valid for the lengths given.
    unsafe {
        for _ in 0..n {
            check(libc::write(fd, buf.as_ptr().cast(), size), size, "write");
        }
        let iov = [libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: size }, libc::iovec { iov_base: buf.as_mut_ptr().add(size).cast(), iov_len: size }];
        check(libc::writev(fd, iov.as_ptr(), 2), 2 * size, "writev");
        check(libc::pwrite(fd, buf.as_ptr().cast(), size, 0), size, "pwrite");
        check(libc::fsync(fd) as isize, 0, "fsync");
        check(libc::fdatasync(fd) as isize, 0, "fdatasync");
        for i in 0..n {
            check(libc::pread(fd, buf.as_mut_ptr().cast(), size, (i as usize * size) as libc::off_t), size, "pread");
        }
        libc::lseek(fd, 0, libc::SEEK_SET);
        check(libc::readv(fd, iov.as_ptr(), 2), 2 * size, "readv");
        libc::lseek(fd, 0, libc::SEEK_END);
        check(libc::read(fd, buf.as_mut_ptr().cast(), size), 0, "read at the end");
    }
    let (after, io1_bytes) = io_counters(io, &mut iobuf);
    let elapsed = start.elapsed().as_nanos();
    set_comm("fileio-after");
    let d: Vec<u64> = (0..4).map(|i| after[i] - before[i]).collect();
    println!("fileio {} {} {} {} {io1_bytes} {elapsed}", d[0], d[1], d[2], d[3]);
}

/// N pread(2)s of SIZE bytes at offset 0 of PATH, written first: page cache
/// hits, the cheapest traced file call (the bench's per-call cost).
fn preads(path: &str, size: usize, n: u64) {
    std::fs::write(path, vec![0x5au8; size]).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut buf = vec![0u8; size];
    for _ in 0..n {
        std::os::unix::fs::FileExt::read_at(&f, &mut buf, 0).expect("pread");
    }
    let _ = std::fs::remove_file(path);
}

/// Pages of PATH in the page cache and of those dirty: cachestat(2)
/// (kernels from 6.5), else mincore(2) of a mapping (no dirty count: 0).
fn cache_state(fd: i32, len: usize) -> (u64, u64, &'static str) {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct CacheStat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = Range { off: 0, len: 0 };
    let mut cs = CacheStat::default();
    // SAFETY: cachestat(2) (451 on x86-64) reads the range and fills cs.
    if unsafe { libc::syscall(451, fd, &range, &mut cs, 0) } == 0 {
        return (cs.nr_cache, cs.nr_dirty, "cachestat");
    }
    // SAFETY: a read-only shared mapping of the file, unmapped below.
    let m = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
    assert!(m != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    let mut vec = vec![0u8; len.div_ceil(4096)];
    // SAFETY: vec has one byte per page of the mapping.
    let r = unsafe { libc::mincore(m, len, vec.as_mut_ptr()) };
    unsafe { libc::munmap(m, len) };
    assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
    (vec.iter().filter(|b| *b & 1 != 0).count() as u64, 0, "mincore")
}

/// One step of a page cache workload on the first PAGES pages of PATH (a
/// file, made by `write`, or a block device): `write` them (64 KiB
/// writes), `sync` (syncfs(2): the flusher writes them back), `drop`
/// (fsync, then POSIX_FADV_DONTNEED evicts them) or `read` them (64 KiB
/// reads). Prints `pagecache CACHED_BEFORE DIRTY_BEFORE CACHED_AFTER
/// DIRTY_AFTER SOURCE`: the kernel's own counts around the step.
fn page_cache(step: &str, path: &str, pages: usize) {
    let len = pages * 4096;
    let c = std::ffi::CString::new(path).unwrap();
    let flags = if step == "write" { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDWR };
    // SAFETY: a valid path; closed at exit.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o600) };
    assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
    let mut buf = vec![0x6bu8; 65536];
    let before = cache_state(fd, len);
    // SAFETY (all calls below): valid fd and buffers of the lengths given.
    unsafe {
        match step {
            "write" => {
                for off in (0..len).step_by(buf.len()) {
                    let n = buf.len().min(len - off);
                    assert_eq!(libc::pwrite(fd, buf.as_ptr().cast(), n, off as libc::off_t), n as isize, "pwrite");
                }
            }
            "sync" => assert_eq!(libc::syncfs(fd), 0, "syncfs: {}", std::io::Error::last_os_error()),
            "drop" => {
                assert_eq!(libc::fsync(fd), 0, "fsync");
                assert_eq!(libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED), 0, "fadvise");
            }
            "read" => {
                for off in (0..len).step_by(buf.len()) {
                    let n = buf.len().min(len - off);
                    assert_eq!(libc::pread(fd, buf.as_mut_ptr().cast(), n, off as libc::off_t), n as isize, "pread");
                }
            }
            other => usage(&format!("pagecache: unknown step {other}")),
        }
    }
    let after = cache_state(fd, len);
    println!("pagecache {} {} {} {} {}", before.0, before.1, after.0, after.1, after.2);
}

/// The allocation sites of `leaks`: not inlined, so each is a frame of its
/// own in the stacks a tracer records.
#[inline(never)]
fn leak_site(size: usize) -> *mut libc::c_void {
    // SAFETY: plain malloc; freed or kept by the caller.
    std::hint::black_box(unsafe { libc::malloc(size) })
}

#[inline(never)]
fn calloc_site(n: usize, size: usize) -> *mut libc::c_void {
    // SAFETY: plain calloc.
    std::hint::black_box(unsafe { libc::calloc(n, size) })
}

#[inline(never)]
fn realloc_site(p: *mut libc::c_void, size: usize) -> *mut libc::c_void {
    // SAFETY: p came from calloc_site and is not used after.
    std::hint::black_box(unsafe { libc::realloc(p, size) })
}

fn wait_for_a_line() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Known allocations held: prints `ready`, waits for a line on stdin, then
/// mallocs N blocks at leak_site (block i is 100 + i % 50 bytes), frees the
/// first FREE of them, callocs 10 blocks of 4 x 25 bytes at calloc_site and
/// reallocs the first 5 of those to 300 bytes at realloc_site; prints
/// `leaks BLOCKS BYTES CALLOC_BLOCKS CALLOC_BYTES REALLOC_BLOCKS
/// REALLOC_BYTES` (what each site holds) and waits for another line before
/// it exits, holding them.
fn leaks(n: usize, free: usize) {
    println!("ready");
    wait_for_a_line();
    let blocks: Vec<*mut libc::c_void> = (0..n).map(|i| leak_site(100 + i % 50)).collect();
    for b in &blocks[..free.min(n)] {
        // SAFETY: from leak_site, freed once.
        unsafe { libc::free(*b) };
    }
    let held: usize = (free.min(n)..n).map(|i| 100 + i % 50).sum();
    let mut c: Vec<*mut libc::c_void> = (0..10).map(|_| calloc_site(4, 25)).collect();
    for p in c.iter_mut().take(5) {
        *p = realloc_site(*p, 300);
    }
    println!("leaks {} {held} 5 500 5 1500", n - free.min(n));
    wait_for_a_line();
    std::hint::black_box((&blocks, &c));
}

/// Kernel objects held: N pipes made, the first CLOSE of them closed (both
/// ends: the kernel frees the pipe), the rest held; prints `pipes HELD`
/// and waits for a line on stdin before it exits. CLOSE >= N: each pipe
/// closed as soon as made, nothing printed, no wait (the benchmark's
/// allocate-and-free loop).
fn pipes(n: usize, close: usize, write: usize) {
    // Two fds a pipe: lift the soft fd limit (often 1,024) to the hard one.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    if close >= n {
        // All closed: each made and closed at once (any N, within any fd limit).
        let bytes = vec![b'x'; write];
        for _ in 0..n {
            let mut p = [0i32; 2];
            // SAFETY: pipe2 fills the two fds, written to and closed at once.
            unsafe {
                assert_eq!(libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2: {}", std::io::Error::last_os_error());
                if write > 0 {
                    assert_eq!(libc::write(p[1], bytes.as_ptr().cast(), write), write as isize);
                }
                libc::close(p[0]);
                libc::close(p[1]);
            }
        }
        return;
    }
    let mut fds = Vec::with_capacity(n);
    for _ in 0..n {
        let mut p = [0i32; 2];
        // SAFETY: pipe2 fills the two fds.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2: {}", std::io::Error::last_os_error());
        fds.push(p);
    }
    // WRITE bytes into each (all of them, before any is closed): the kernel
    // takes pages for them, and frees those of the pipes closed.
    let bytes = vec![b'x'; write];
    for p in fds.iter().filter(|_| write > 0) {
        // SAFETY: our own write end, a buffer of `write` bytes.
        let w = unsafe { libc::write(p[1], bytes.as_ptr().cast(), write) };
        assert_eq!(w, write as isize, "write into a pipe: {}", std::io::Error::last_os_error());
    }
    for p in &fds[..close.min(n)] {
        // SAFETY: our own fds, closed once.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
    }
    println!("pipes {}", n - close.min(n));
    wait_for_a_line();
}

/// Page faults of known kinds: anonymous first touches, then major faults
/// on a file evicted from the page cache.
fn page_faults(anon_pages: usize, path: &str, file_pages: usize) {
    let page = 4096usize;
    // SAFETY: plain anonymous and file mappings, unmapped before return;
    // every pointer stays inside its mapping.
    unsafe {
        let len = anon_pages * page;
        let a = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        assert!(a != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        libc::madvise(a, len, libc::MADV_NOHUGEPAGE);
        for i in 0..anon_pages {
            std::ptr::write_volatile((a as *mut u8).add(i * page), 1);
        }
        libc::munmap(a, len);
        if file_pages == 0 {
            return;
        }

        let data = vec![7u8; file_pages * page];
        std::fs::write(path, &data).unwrap_or_else(|e| panic!("{path}: {e}"));
        let f = std::fs::File::open(path).unwrap();
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        libc::fsync(fd);
        libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
        let len = file_pages * page;
        let m = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, fd, 0);
        assert!(m != libc::MAP_FAILED, "mmap {path}: {}", std::io::Error::last_os_error());
        libc::madvise(m, len, libc::MADV_RANDOM);
        let mut sum = 0u64;
        for i in 0..file_pages {
            sum += std::ptr::read_volatile((m as *const u8).add(i * page)) as u64;
        }
        assert_eq!(sum, 7 * file_pages as u64);
        libc::munmap(m, len);
    }
}

fn open_close(path: &str, n: u64) {
    let c = std::ffi::CString::new(path).unwrap();
    for _ in 0..n {
        // SAFETY: valid C string; the fd is closed right away.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
    }
}

fn tcp(v6: bool, port: u16, n: u64, bytes: usize, client_closes: bool) {
    let addr: SocketAddr = if v6 { (Ipv6Addr::LOCALHOST, port).into() } else { (Ipv4Addr::LOCALHOST, port).into() };
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| usage(&format!("bind {addr}: {e}")));
    let server = std::thread::spawn(move || {
        set_comm("tcpserver");
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; bytes];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf[..bytes / 2]).unwrap();
            if client_closes {
                // Wait for the client's FIN before closing.
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).unwrap();
            }
            // Otherwise the server closes first: the client sees FIN.
        }
    });
    let payload = vec![7u8; bytes];
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(&payload).unwrap();
        let mut back = vec![0u8; bytes / 2];
        c.read_exact(&mut back).unwrap();
        if !client_closes {
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        }
    }
    server.join().unwrap();
}

fn pingpong(n: u64) {
    let mut a = [0i32; 2];
    let mut b = [0i32; 2];
    // SAFETY: two valid 2-int arrays.
    unsafe {
        libc::pipe(a.as_mut_ptr());
        libc::pipe(b.as_mut_ptr());
    }
    let (a_r, a_w, b_r, b_w) = (a[0], a[1], b[0], b[1]);
    let t = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        for _ in 0..n {
            unsafe {
                libc::read(a_r, byte.as_mut_ptr().cast(), 1);
                libc::write(b_w, byte.as_ptr().cast(), 1);
            }
        }
    });
    let mut byte = [1u8; 1];
    for _ in 0..n {
        unsafe {
            libc::write(a_w, byte.as_ptr().cast(), 1);
            libc::read(b_r, byte.as_mut_ptr().cast(), 1);
        }
    }
    t.join().unwrap();
}

/// A connect to `closed` (nothing listens: refused), then two connections to
/// a listener on `port` that the client resets: one closed with SO_LINGER 0,
/// one closed with data it did not read.
fn tcp_resets(closed: u16, port: u16) {
    use std::os::fd::AsRawFd;
    let refused = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, closed));
    assert!(refused.is_err(), "port {closed} must have no listener");
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("listening");
    let c = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connecting");
    let (s, _) = l.accept().expect("accepting");
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt with a linger struct of the size given.
    unsafe {
        libc::setsockopt(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, (&linger as *const libc::linger).cast(), std::mem::size_of::<libc::linger>() as u32);
    }
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(s);
    let c = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connecting");
    let (mut s, _) = l.accept().expect("accepting");
    std::io::Write::write_all(&mut s, &[7u8; 100]).expect("sending");
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(c); // 100 bytes unread
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(s);
}

fn churn(dir: &str, n: u64) {
    for i in 0..n {
        let path = std::ffi::CString::new(format!("{dir}/{i}")).expect("path without NUL");
        // SAFETY: the child only makes system calls and _exits: nothing that
        // needs the parent's locks after fork.
        unsafe {
            match libc::fork() {
                0 => {
                    libc::getppid();
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    libc::_exit(0);
                }
                -1 => panic!("fork: {}", std::io::Error::last_os_error()),
                child => {
                    libc::waitpid(child, std::ptr::null_mut(), 0);
                }
            }
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--comm") {
        if args.len() < 2 {
            usage("--comm needs a name");
        }
        set_comm(&args[1]);
        args.drain(..2);
    }
    let start = Instant::now();
    let ops = match args.first().map(String::as_str) {
        Some("getppid") => {
            let n = num(args.get(1), "N");
            getppid(n);
            n
        }
        Some("sleeps") => {
            let (n, ms) = (num(args.get(1), "N"), num(args.get(2), "MS"));
            for _ in 0..n {
                let ts = libc::timespec { tv_sec: (ms / 1000) as libc::time_t, tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long };
                // SAFETY: a valid timespec; no remainder wanted.
                unsafe { libc::syscall(libc::SYS_nanosleep, &ts, std::ptr::null_mut::<libc::timespec>()) };
                getppid(1);
            }
            n
        }
        Some("open") => {
            let path = args.get(1).unwrap_or_else(|| usage("open needs PATH"));
            let n = num(args.get(2), "N");
            open_close(path, n);
            n
        }
        Some("alloc") => {
            let mib = num(args.get(1), "MIB");
            let mut kept: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mib {
                // Non-zero bytes: every page is touched, none is shared zero.
                kept.push(vec![1u8; 1 << 20]);
            }
            std::hint::black_box(&kept);
            mib
        }
        Some("faults") => {
            let anon = num(args.get(1), "ANON_PAGES") as usize;
            let path = args.get(2).unwrap_or_else(|| usage("faults needs FILE"));
            let file_pages = num(args.get(3), "FILE_PAGES") as usize;
            page_faults(anon, path, file_pages);
            (anon + file_pages) as u64
        }
        Some("pipes") => {
            let (n, close) = (num(args.get(1), "N") as usize, num(args.get(2), "CLOSE") as usize);
            let write = args.get(3).map(|_| num(args.get(3), "WRITE") as usize).unwrap_or(0);
            pipes(n, close, write);
            n as u64
        }
        Some("leaks") => {
            let (n, free) = (num(args.get(1), "N") as usize, num(args.get(2), "FREE") as usize);
            leaks(n, free);
            n as u64
        }
        Some("pagecache") => {
            let step = args.get(1).unwrap_or_else(|| usage("pagecache needs write, sync, drop or read"));
            let path = args.get(2).unwrap_or_else(|| usage("pagecache needs PATH"));
            let pages = num(args.get(3), "PAGES");
            page_cache(step, path, pages as usize);
            pages
        }
        Some("preads") => {
            let path = args.get(1).unwrap_or_else(|| usage("preads needs PATH"));
            let (size, n) = (num(args.get(2), "SIZE") as usize, num(args.get(3), "N"));
            preads(path, size, n);
            n
        }
        Some("fileio") => {
            let path = args.get(1).unwrap_or_else(|| usage("fileio needs PATH"));
            let (n, size) = (num(args.get(2), "N"), num(args.get(3), "SIZE") as usize);
            let window = args.get(4).unwrap_or_else(|| usage("fileio needs WINDOW_COMM"));
            file_io(path, n, size, window);
            n
        }
        Some("dio") => {
            let path = args.get(1).unwrap_or_else(|| usage("dio needs PATH"));
            let op = args.get(2).unwrap_or_else(|| usage("dio needs read, write or fsync"));
            let (size, n) = (num(args.get(3), "SIZE") as usize, num(args.get(4), "N"));
            direct_io(path, op, size, n);
            n
        }
        Some(v @ ("tcp4" | "tcp6" | "tcp4c" | "tcp6c")) => {
            let port = num(args.get(1), "PORT") as u16;
            let n = num(args.get(2), "N");
            tcp(v.starts_with("tcp6"), port, n, num(args.get(3), "BYTES") as usize, v.ends_with('c'));
            n
        }
        Some("tcpresets") => {
            tcp_resets(num(args.get(1), "CLOSED_PORT") as u16, num(args.get(2), "PORT") as u16);
            2
        }
        Some("exit") => std::process::exit(num(args.get(1), "CODE") as i32),
        Some("execs") => {
            let n = num(args.get(1), "N");
            let me = std::env::current_exe().expect("own path");
            for _ in 0..n {
                let st = std::process::Command::new(&me).args(["exit", "0"]).status().expect("spawning a child");
                assert!(st.success());
            }
            n
        }
        Some("spin") => {
            // One short sleep (a switch-out: the process is known to the
            // scheduler tracer), then a CPU hog that need never be switched out.
            let secs = num(args.get(1), "SECS");
            std::thread::sleep(std::time::Duration::from_millis(1));
            let end = Instant::now() + std::time::Duration::from_secs(secs);
            let mut n = 0u64;
            while Instant::now() < end {
                n = std::hint::black_box(n.wrapping_add(1));
            }
            n
        }
        Some("churn") => {
            let dir = args.get(1).unwrap_or_else(|| usage("churn needs DIR"));
            let n = num(args.get(2), "N");
            churn(dir, n);
            n
        }
        Some("pingpong") => {
            let n = num(args.get(1), "N");
            pingpong(n);
            n
        }
        _ => usage("unknown workload"),
    };
    let elapsed = start.elapsed().as_nanos();
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    // The kernel's own accounting of this task: ns on a CPU and ns waiting
    // on a run queue (/proc/self/schedstat), as late as it can be read. Only
    // for the scheduler workloads: reading it is an open, and the open
    // workload's count must stay its own.
    let schedstat = match args.first().map(String::as_str) {
        Some("spin" | "pingpong") => std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default(),
        _ => String::new(),
    };
    let mut f = schedstat.split_whitespace();
    let (run, wait) = (f.next().unwrap_or("0"), f.next().unwrap_or("0"));
    println!("done {elapsed} {ops} {} {} {run} {wait}", ru.ru_nvcsw, ru.ru_nivcsw);
    if args.first().map(String::as_str) == Some("faults") {
        // The kernel's counts for this process (fields 10 and 12), as late
        // as they can be read.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let f: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("").split_whitespace().collect();
        println!("faults {} {}", f.get(7).unwrap_or(&"0"), f.get(9).unwrap_or(&"0"));
    }
}
