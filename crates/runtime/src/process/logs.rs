//! Function logs: a reader per environment that turns the child's stdout and stderr into
//! lines attributed to the invocation in flight, and one writer task that stores lines in
//! batches.
//!
//! The invoke path never writes to the store: it sends lines over a channel, and the writer
//! appends whatever has queued up in one `append_logs` call. After the first line of a batch
//! the writer lingers for [`LINGER`] (without being woken per line) so that one durable commit
//! carries the lines of many invocations even at concurrency 1; a [`LogSink::flush`] or
//! [`BATCH`] queued lines cut the wait short. Nothing on the invoke path waits for it
//! (`LogType=Tail` is served from the reader's memory).
//!
//! Lines printed by a handler before it posts its response must reach that invocation's log
//! even though the reader may lag behind the pipe. The bootstraps flush before posting, so at
//! that moment the bytes are in the kernel's pipe buffer. [`ReaderCtl::Finish`] is a barrier:
//! the reader reads both pipes with plain non-blocking `read(2)`s until they are empty
//! (not waiting for readiness events, which may lag), emits the lines, and only then acknowledges.
//! A line still without its newline at the barrier is emitted as it is.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use gust_model::{limits, now_ms, LogEntry, LogStream};
use gust_store::LogStore;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// Lines longer than this are split (CloudWatch's event limit is 256 KB).
const MAX_LINE_BYTES: usize = 256 * 1024;
/// Lines queued for the writer before readers (and so the functions' writes) are held back.
const QUEUE: usize = 16 * 1024;
/// Most lines per `append_logs` call.
const BATCH: usize = 2048;
/// How long the writer waits for more lines before committing a batch.
const LINGER: Duration = Duration::from_millis(10);

enum LogMsg {
    Entry(LogEntry),
    Flush(oneshot::Sender<()>),
}

/// The sending side of the log writer; cheap to clone. Shared by the process and Wasm
/// executors so every function's lines reach the store the same way.
#[derive(Clone, Debug)]
pub struct LogSink {
    tx: mpsc::Sender<LogMsg>,
    /// Ends the writer's linger early (a flush, or a full batch waiting).
    kick: Arc<Notify>,
}

impl std::fmt::Debug for LogMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogMsg")
    }
}

impl LogSink {
    /// Starts the writer task. It ends when every sink is dropped; its handle is the owner's.
    pub fn start(store: Arc<dyn LogStore>) -> (LogSink, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let kick = Arc::new(Notify::new());
        (
            LogSink {
                tx,
                kick: kick.clone(),
            },
            tokio::spawn(writer(store, rx, kick)),
        )
    }

    pub async fn push(&self, entry: LogEntry) {
        // Only fails when the writer is gone (shutdown); the line is then dropped.
        let _ = self.tx.send(LogMsg::Entry(entry)).await;
        if QUEUE - self.tx.capacity() >= BATCH {
            self.kick.notify_one();
        }
    }

    /// A platform line (`START`, `END`, `REPORT`, timeouts).
    pub async fn platform(&self, function: &str, request_id: &str, message: String) {
        self.push(LogEntry {
            ts_ms: now_ms(),
            function: function.to_string(),
            request_id: request_id.to_string(),
            stream: LogStream::Platform,
            message,
        })
        .await;
    }

    /// Returns once every line sent before this call is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(LogMsg::Flush(tx)).await.is_ok() {
            self.kick.notify_one();
            let _ = rx.await;
        }
    }
}

async fn writer(store: Arc<dyn LogStore>, mut rx: mpsc::Receiver<LogMsg>, kick: Arc<Notify>) {
    let is_flush = |m: &LogMsg| matches!(m, LogMsg::Flush(_));
    let mut msgs = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut msgs, BATCH).await == 0 {
            return;
        }
        if msgs.len() < BATCH && !msgs.iter().any(is_flush) {
            // Linger. The receiver is not polled meanwhile, so senders do not wake this task.
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = kick.notified() => {}
            }
            while msgs.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
        }
        let mut entries = Vec::with_capacity(msgs.len());
        let mut acks = Vec::new();
        for m in msgs.drain(..) {
            match m {
                LogMsg::Entry(e) => entries.push(e),
                LogMsg::Flush(ack) => acks.push(ack),
            }
        }
        if !entries.is_empty() {
            let n = entries.len();
            if let Err(error) = store.append_logs(entries).await {
                tracing::warn!(%error, lines = n, "storing function logs failed; lines dropped");
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Messages from the invoker to an environment's reader.
#[derive(Debug)]
pub(crate) enum ReaderCtl {
    /// Drain both pipes, then answer with the collected tail lines; lines from then on belong
    /// to no request.
    Finish { ack: oneshot::Sender<Vec<String>> },
}

/// The start of an invocation's output, handed to the reader without waking it: lines from
/// now on belong to `request_id` (collected for the tail if asked). The reader applies it
/// before it emits its next line or handles its next `Finish`.
#[derive(Debug, Default)]
pub(crate) struct Begin(std::sync::Mutex<Option<(String, bool)>>);

impl Begin {
    pub(crate) fn set(&self, request_id: &str, tail: bool) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((request_id.to_string(), tail));
    }

    fn take(&self) -> Option<(String, bool)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

struct Pipe<R> {
    reader: R,
    partial: Vec<u8>,
    open: bool,
    stream: LogStream,
}

struct Attribution {
    begin: Arc<Begin>,
    function: String,
    request_id: String,
    tail: Option<Vec<String>>,
    tail_bytes: usize,
    sink: LogSink,
}

impl Attribution {
    /// Applies a pending [`Begin`].
    fn sync(&mut self) {
        if let Some((request_id, tail)) = self.begin.take() {
            self.request_id = request_id;
            self.tail = tail.then(Vec::new);
            self.tail_bytes = 0;
        }
    }

    async fn emit(&mut self, stream: LogStream, bytes: &[u8]) {
        self.sync();
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let message = String::from_utf8_lossy(bytes).into_owned();
        if let Some(tail) = &mut self.tail {
            self.tail_bytes += message.len() + 1;
            tail.push(message.clone());
            // Keep a little more than the tail needs; the final cut is made on the joined text.
            while self.tail_bytes > 2 * limits::LOG_TAIL_BYTES && tail.len() > 1 {
                let dropped = tail.remove(0);
                self.tail_bytes -= dropped.len() + 1;
            }
        }
        self.sink
            .push(LogEntry {
                ts_ms: now_ms(),
                function: self.function.clone(),
                request_id: self.request_id.clone(),
                stream,
                message,
            })
            .await;
    }
}

/// Reads one environment's output until `ctl` closes.
pub(crate) async fn reader(
    function: String,
    stdout: ChildStdout,
    stderr: ChildStderr,
    sink: LogSink,
    begin: Arc<Begin>,
    mut ctl: mpsc::UnboundedReceiver<ReaderCtl>,
) {
    let mut out = Pipe {
        reader: stdout,
        partial: Vec::new(),
        open: true,
        stream: LogStream::Stdout,
    };
    let mut err = Pipe {
        reader: stderr,
        partial: Vec::new(),
        open: true,
        stream: LogStream::Stderr,
    };
    let mut at = Attribution {
        begin,
        function,
        request_id: String::new(),
        tail: None,
        tail_bytes: 0,
        sink,
    };
    let mut out_buf = vec![0u8; 64 * 1024];
    let mut err_buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            msg = ctl.recv() => match msg {
                Some(ReaderCtl::Finish { ack }) => {
                    at.sync();
                    drain(&mut out, &mut at, &mut out_buf).await;
                    drain(&mut err, &mut at, &mut err_buf).await;
                    flush_partial(&mut out, &mut at).await;
                    flush_partial(&mut err, &mut at).await;
                    let lines = at.tail.take().unwrap_or_default();
                    at.request_id.clear();
                    let _ = ack.send(lines);
                }
                None => break,
            },
            r = out.reader.read(&mut out_buf), if out.open => handle_read(&mut out, r, &out_buf, &mut at).await,
            r = err.reader.read(&mut err_buf), if err.open => handle_read(&mut err, r, &err_buf, &mut at).await,
        }
    }
    flush_partial(&mut out, &mut at).await;
    flush_partial(&mut err, &mut at).await;
}

async fn flush_partial<R>(p: &mut Pipe<R>, at: &mut Attribution) {
    if !p.partial.is_empty() {
        let line = std::mem::take(&mut p.partial);
        at.emit(p.stream, &line).await;
    }
}

/// Reads whatever the pipe holds right now with plain non-blocking `read`s, without waiting for
/// a readiness event (which may not have been delivered yet).
async fn drain<R: AsFd>(p: &mut Pipe<R>, at: &mut Attribution, buf: &mut [u8]) {
    while p.open {
        let r = rustix::io::read(&p.reader, &mut *buf).map_err(io::Error::from);
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            return;
        }
        handle_read(p, r, buf, at).await;
    }
}

async fn handle_read<R>(p: &mut Pipe<R>, r: io::Result<usize>, buf: &[u8], at: &mut Attribution) {
    match r {
        Ok(0) => p.open = false,
        Ok(n) => feed(p, &buf[..n], at).await,
        Err(e)
            if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(error) => {
            tracing::debug!(%error, "reading function output failed");
            p.open = false;
        }
    }
}

async fn feed<R>(p: &mut Pipe<R>, mut data: &[u8], at: &mut Attribution) {
    while let Some(i) = memchr(b'\n', data) {
        if p.partial.is_empty() {
            at.emit(p.stream, &data[..i]).await;
        } else {
            p.partial.extend_from_slice(&data[..i]);
            let line = std::mem::take(&mut p.partial);
            at.emit(p.stream, &line).await;
        }
        data = &data[i + 1..];
    }
    p.partial.extend_from_slice(data);
    while p.partial.len() >= MAX_LINE_BYTES {
        let rest = p.partial.split_off(MAX_LINE_BYTES);
        let line = std::mem::replace(&mut p.partial, rest);
        at.emit(p.stream, &line).await;
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// The last [`limits::LOG_TAIL_BYTES`] of `lines` joined by newlines (ending with one), cut at
/// a character boundary.
pub fn tail_text(lines: &[String]) -> String {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    if text.len() <= limits::LOG_TAIL_BYTES {
        return text;
    }
    let mut cut = text.len() - limits::LOG_TAIL_BYTES;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    text.split_off(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_bytes() {
        let lines: Vec<String> = (0..1000).map(|i| format!("line {i} é")).collect();
        let t = tail_text(&lines);
        assert!(t.len() <= limits::LOG_TAIL_BYTES);
        assert!(t.ends_with("line 999 é\n"));
        assert_eq!(tail_text(&["a".into(), "b".into()]), "a\nb\n");
    }
}
