//! Following the log of a `compactd run --wait` child: its stderr is read on a thread of its
//! own (the child never blocks on a full pipe), every line is kept, and the HTTP port is taken
//! from the start-up line `serving HTTP ... address=127.0.0.1:PORT` (address is its last field).

use std::io::BufRead;
use std::process::ChildStderr;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A child's stderr, read in the background.
pub struct StderrLog {
    lines: Arc<Mutex<Vec<String>>>,
    port: Receiver<u16>,
    reader: JoinHandle<()>,
}

impl StderrLog {
    /// Starts reading `stderr`.
    pub fn follow(stderr: ChildStderr) -> StderrLog {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, port) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(address) = line.split("address=").nth(1) {
                    let port = address.rsplit(':').next().unwrap().trim().parse::<u16>();
                    let _ = tx.send(port.expect("a port after address="));
                }
                sink.lock().unwrap().push(line);
            }
        });
        StderrLog {
            lines,
            port,
            reader,
        }
    }

    /// The HTTP port the child logged at start-up (waits up to 30 s for it).
    pub fn port(&self) -> u16 {
        self.port
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("HTTP address logged:\n{}", self.text()))
    }

    /// The whole log, once the child closed its stderr (it exited).
    pub fn finish(self) -> String {
        self.reader.join().expect("the stderr reader");
        let lines = self.lines.lock().unwrap();
        lines.join("\n")
    }

    /// Everything logged so far, a line each.
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits up to `timeout` for the first line containing `needle` and returns the log up
    /// to it, that line included; panics with the log otherwise.
    pub fn until(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(i) = lines.iter().position(|l| l.contains(needle)) {
                    return lines[..=i].to_vec();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
