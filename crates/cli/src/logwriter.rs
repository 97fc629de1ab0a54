//! `gust up`'s log output: formatted lines are handed to one writer thread, which writes them
//! to stderr in batches and flushes whenever it has caught up.
//!
//! The gateway logs a line per request; written straight to stderr each line is a `write`
//! system call under a lock on the request path, which costs a busy gateway a large share of
//! its throughput. Here the request path only formats into a buffer and queues it. The queue
//! is bounded, so a stalled stderr slows logging callers down instead of growing memory, and
//! no line is dropped. [`LogGuard`] flushes what is queued when `gust up` ends.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// Lines waiting for the writer thread before logging callers block.
const QUEUE: usize = 16_384;

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// The `MakeWriter` given to `tracing_subscriber`: each event is formatted into a
/// [`LineWriter`] and queued when the event is complete.
#[derive(Clone)]
pub struct QueuedStderr {
    tx: SyncSender<Msg>,
}

/// Flushes queued lines when dropped (bounded wait, so a wedged stderr cannot hang exit).
pub struct LogGuard {
    tx: SyncSender<Msg>,
}

/// Starts the writer thread.
pub fn queued_stderr() -> (QueuedStderr, LogGuard) {
    let (tx, rx) = sync_channel(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("gust-log".into())
        .spawn(move || write_lines(rx, std::io::stderr()));
    if let Err(e) = spawned {
        // Without the thread nothing would drain the queue; say so where it can be seen.
        eprintln!("warning: cannot start the log writer thread: {e}");
    }
    (QueuedStderr { tx: tx.clone() }, LogGuard { tx })
}

fn write_lines(rx: Receiver<Msg>, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(msg) = rx.recv() {
        let mut next = Some(msg);
        // Write everything already queued, then flush once.
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Msg::Flush(ack) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            tx: self.tx.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

/// One event's formatted text, queued when dropped.
pub struct LineWriter {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.buf);
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            // Full: wait for room rather than lose the line.
            Err(TrySendError::Full(msg)) => {
                let _ = self.tx.send(msg);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_and_guard_flushes() {
        let (tx, rx) = sync_channel(4);
        let sink = Shared::default();
        let out = sink.clone();
        let thread = std::thread::spawn(move || write_lines(rx, out));
        let make = QueuedStderr { tx: tx.clone() };
        for i in 0..100 {
            let mut w = tracing_subscriber::fmt::MakeWriter::make_writer(&make);
            write!(w, "line {i}").unwrap();
            writeln!(w).unwrap();
        }
        drop(LogGuard { tx: tx.clone() });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
        drop((tx, make));
        thread.join().unwrap();
    }
}
