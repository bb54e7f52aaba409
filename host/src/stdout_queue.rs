//! Headless output goes to stdout through a thread of its own: a pipe that
//! nobody reads blocks that thread, never the event loop, so signals,
//! `--duration` and detaching always work. Output waits in a bounded queue of
//! chunks; the writer in front flushes only at record ends, so a chunk holds
//! whole records. When the queue is full a whole chunk is dropped and its
//! records counted as lost (output backlog), never cut in the middle of a line.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Usual chunk size (the writer in front flushes at about this much).
const CHUNK: usize = 256 * 1024;
/// Chunks waiting for the writer thread at most (about 16 MiB).
const QUEUE: usize = 64;

pub struct StdoutQueue {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    /// Records whose bytes are in `buf`.
    pending_records: u64,
    /// Records dropped because the queue was full.
    pub lost_records: u64,
    closed: Arc<AtomicBool>,
    /// Chunks the writer thread has written: progress, for `close`.
    written: Arc<AtomicU64>,
    done: Receiver<()>,
}

impl StdoutQueue {
    pub fn new() -> StdoutQueue {
        Self::with_sink(io::stdout())
    }

    pub fn with_sink<S: Write + Send + 'static>(mut sink: S) -> StdoutQueue {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let (done_tx, done) = sync_channel(1);
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let written = Arc::new(AtomicU64::new(0));
        let progress = written.clone();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                for chunk in rx {
                    if sink.write_all(&chunk).and_then(|_| sink.flush()).is_err() {
                        flag.store(true, Ordering::Relaxed);
                        break;
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                let _ = done_tx.send(());
            })
            .expect("starting the stdout thread");
        StdoutQueue { tx: Some(tx), buf: Vec::with_capacity(CHUNK), pending_records: 0, lost_records: 0, closed, written, done }
    }

    /// The bytes written since the last call end one record.
    pub fn record_done(&mut self) {
        self.pending_records += 1;
    }

    /// Whether the reader went away (a closed pipe).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Hand what is buffered to the writer thread now (or drop it, counted, if
    /// the queue is full).
    pub fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let Some(tx) = &self.tx else { return Err(io::ErrorKind::BrokenPipe.into()) };
        match tx.try_send(chunk) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.lost_records += self.pending_records,
            Err(TrySendError::Disconnected(_)) => return Err(io::ErrorKind::BrokenPipe.into()),
        }
        self.pending_records = 0;
        Ok(())
    }

    /// Send what is left and wait for it to be written while the reader takes
    /// it: a slow reader is waited for, one that takes nothing for `stall` is
    /// not. Returns whether everything was written.
    pub fn close(&mut self, stall: Duration) -> bool {
        let _ = self.send();
        self.tx = None;
        let mut seen = self.written.load(Ordering::Relaxed);
        loop {
            match self.done.recv_timeout(stall) {
                Ok(()) => return !self.is_closed(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let now = self.written.load(Ordering::Relaxed);
                    if now == seen {
                        return false;
                    }
                    seen = now;
                }
            }
        }
    }
}

impl Write for StdoutQueue {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.is_closed() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    /// Called at record ends: what is buffered goes to the writer thread.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that never returns, like a pipe nobody reads.
    struct Stuck;
    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_reader_costs_records_not_the_caller() {
        let mut q = StdoutQueue::with_sink(Stuck);
        let line = vec![b'x'; 1000];
        let records = 200_000u64;
        for i in 0..records {
            q.write_all(&line).unwrap();
            q.record_done();
            if (i + 1) % (CHUNK as u64 / 1000) == 0 {
                q.flush().unwrap();
            }
        }
        q.send().unwrap();
        // One chunk is in the stuck write, QUEUE wait: the rest are counted lost.
        let per_chunk = (CHUNK as u64).div_ceil(1000);
        assert!(q.lost_records > 0 && q.lost_records <= records, "{}", q.lost_records);
        assert!(records - q.lost_records <= (QUEUE as u64 + 2) * per_chunk, "{} lost", q.lost_records);
        assert!(!q.close(Duration::from_millis(100)), "a stuck stdout is reported as not written");
    }

    /// A reader that takes 20 ms per chunk, like a slow consumer.
    struct Slow(std::sync::Arc<std::sync::atomic::AtomicU64>);
    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(20));
            self.0.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_reader_gets_everything_at_close() {
        let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut q = StdoutQueue::with_sink(Slow(got.clone()));
        // 30 chunks at 20 ms each: longer than the stall limit in all.
        for _ in 0..30 {
            q.write_all(&[b'x'; 1000]).unwrap();
            q.record_done();
            q.flush().unwrap();
        }
        assert!(q.close(Duration::from_millis(100)), "a reader that keeps reading is waited for");
        assert_eq!((got.load(Ordering::Relaxed), q.lost_records), (30_000, 0));
    }
}
