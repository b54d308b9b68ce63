//! Log lines leave the request path: formatting stays on the calling thread, writing moves to one
//! thread that batches whatever lines are waiting into one `write` to stderr. At tens of
//! thousands of requests a second, one unbuffered `write(2)` per access-log line was a syscall on
//! every request's thread.
//!
//! Nothing is dropped: the channel is unbounded (a line is about 250 bytes; the writer thread
//! keeps up with any request rate the server reaches), and [`LogWriter::flush`] waits until every
//! line sent before it is on stderr, so `main` calls it before exiting.

use std::io::Write;
use std::sync::mpsc;
use std::sync::OnceLock;

enum Msg {
    Line(Vec<u8>),
    Flush(mpsc::SyncSender<()>),
}

#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Msg>,
}

static WRITER: OnceLock<LogWriter> = OnceLock::new();

impl LogWriter {
    /// The process's writer (its thread starts on first use).
    pub fn global() -> LogWriter {
        WRITER.get_or_init(|| LogWriter::spawn(std::io::stderr())).clone()
    }

    fn spawn(sink: impl Write + Send + 'static) -> LogWriter {
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::with_capacity(64 << 10, sink);
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    // Everything already waiting goes out in one write.
                    while let Some(msg) = next {
                        match msg {
                            Msg::Line(l) => {
                                let _ = out.write_all(&l);
                            }
                            Msg::Flush(done) => {
                                let _ = out.flush();
                                let _ = done.send(());
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    let _ = out.flush();
                }
            })
            .expect("spawning the log writer thread");
        LogWriter { tx }
    }

    /// Returns once every line sent before this call has been written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// One formatted event: `tracing_subscriber`'s formatter writes it in pieces, sent whole on drop.
pub struct Line {
    buf: Vec<u8>,
    tx: mpsc::Sender<Msg>,
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.tx.send(Msg::Line(std::mem::take(&mut self.buf)));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line { buf: Vec::with_capacity(256), tx: self.tx.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_flush_waits_for_them() {
        let sink = Shared::default();
        let w = LogWriter::spawn(sink.clone());
        std::thread::scope(|s| {
            for t in 0..4 {
                let w = w.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        let mut line = w.make_writer();
                        // Written in pieces, as the formatter does.
                        write!(line, "{{\"t\":{t},").unwrap();
                        writeln!(line, "\"i\":{i}}}").unwrap();
                    }
                });
            }
        });
        w.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2000);
        for l in &lines {
            let v: serde_json::Value = serde_json::from_str(l).expect("a whole line");
            assert!(v["i"].as_u64().unwrap() < 500);
        }
        for t in 0..4 {
            // Each thread's lines keep their order.
            let mine: Vec<u64> = lines
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|v| v["t"] == t)
                .map(|v| v["i"].as_u64().unwrap())
                .collect();
            assert_eq!(mine, (0..500).collect::<Vec<u64>>());
        }
    }
}
