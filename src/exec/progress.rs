//! Progress of a running job: a bar on a terminal (files, bytes, rate, ETA), a plain line every
//! few seconds otherwise, nothing for library callers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::human_bytes;

pub trait Progress: Send + Sync {
    /// The job's transfer volume is known.
    fn start(&self, what: &str, files: u64, bytes: u64);
    /// One file done; `sent` is false when nothing moved (the repository held it already, or
    /// an earlier run of the job transferred it): its bytes count toward neither the rate nor
    /// the bytes still to move.
    fn file_done(&self, bytes: u64, sent: bool);
    /// A phase or note.
    fn note(&self, message: &str);
    fn finish(&self);
}

/// No output.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64, _: u64) {}
    fn file_done(&self, _: u64, _: bool) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}

/// A bar on a terminal, or a line every five seconds when standard error is not one.
pub struct Console {
    bar: ProgressBar,
    plain: bool,
    state: Mutex<PlainState>,
}

struct PlainState {
    what: String,
    files: u64,
    skipped: u64,
    total_files: u64,
    /// Bytes moved, and bytes to move (the job's total less what was skipped).
    bytes: u64,
    total_bytes: u64,
    started: Instant,
    last: Instant,
}

impl Console {
    pub fn new() -> Console {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let plain = bar.is_hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Console {
            bar,
            plain,
            state: Mutex::new(PlainState {
                what: String::new(),
                files: 0,
                skipped: 0,
                total_files: 0,
                bytes: 0,
                total_bytes: 0,
                started: Instant::now(),
                last: Instant::now(),
            }),
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Progress for Console {
    fn start(&self, what: &str, files: u64, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.what = what.to_string();
        s.total_files = files;
        s.total_bytes = bytes;
        s.started = Instant::now();
        self.bar.set_length(bytes);
        self.bar.set_message(format!("{what} 0/{files} files"));
    }

    fn file_done(&self, bytes: u64, sent: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.files += 1;
        if sent {
            s.bytes += bytes;
            self.bar.inc(bytes);
        } else {
            // Nothing moved: the bar and the rate are about bytes that do.
            s.skipped += 1;
            s.total_bytes = s.total_bytes.saturating_sub(bytes);
            self.bar.set_length(s.total_bytes);
        }
        let skipped = if s.skipped > 0 {
            format!(" ({} already there)", s.skipped)
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "{} {}/{} files{skipped}",
            s.what, s.files, s.total_files
        ));
        if self.plain && (s.last.elapsed() >= Duration::from_secs(5) || s.files == s.total_files) {
            s.last = Instant::now();
            let secs = s.started.elapsed().as_secs_f64().max(0.001);
            crate::errln!(
                "{}: {}/{} files{skipped}, {}/{} ({}/s)",
                s.what,
                s.files,
                s.total_files,
                human_bytes(s.bytes),
                human_bytes(s.total_bytes),
                human_bytes((s.bytes as f64 / secs) as u64)
            );
        }
    }

    fn note(&self, message: &str) {
        if self.plain {
            crate::errln!("{message}");
        } else {
            self.bar.println(message);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
