//! Who gets in, and what it costs before they are known. A connection that has not logged in
//! costs one socket and one small task: no session, no catalog, no thread (those come after
//! the password check). At most [`Limits::max_pending`] such connections wait at once, each
//! for at most [`Limits::login_timeout`]; when a new one arrives and all places are taken, the
//! oldest waiting one is closed, so a flood of connections that never log in cannot keep
//! real clients out. Logged-in connections are capped at [`Limits::max_connections`]; past
//! it a client gets MySQL's "Too many connections" (1040). Accept errors (out of file
//! descriptors) back off instead of spinning, and repeated log lines are rate-limited.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The server's admission limits (`srbackup.conf`: `max_connections`, `max_pending_logins`,
/// `login_timeout_seconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_pending: usize,
    pub login_timeout: Duration,
}

/// A connection waiting to log in: its place in the queue, and how it is told to go.
pub struct Pending {
    pub id: u32,
    pub evicted: std::sync::Arc<Notify>,
}

pub struct Admission {
    limits: Limits,
    pending: Mutex<VecDeque<Pending>>,
    logged_in: AtomicUsize,
    log: LogLimiter,
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            pending: Mutex::new(VecDeque::new()),
            logged_in: AtomicUsize::new(0),
            log: LogLimiter::new(20),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A new connection: it waits to log in, in place of the oldest waiting one if every
    /// place is taken. Returns what tells it that it was evicted.
    pub fn arrive(&self, id: u32) -> std::sync::Arc<Notify> {
        let evicted = std::sync::Arc::new(Notify::new());
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while pending.len() >= self.limits.max_pending.max(1) {
            if let Some(oldest) = pending.pop_front() {
                oldest.evicted.notify_one();
            }
        }
        pending.push_back(Pending {
            id,
            evicted: evicted.clone(),
        });
        evicted
    }

    /// The connection stopped waiting (logged in, failed, went away).
    pub fn leave_queue(&self, id: u32) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|p| p.id != id);
    }

    /// A login succeeded: whether there is room for it.
    pub fn log_in(&self, id: u32) -> bool {
        self.leave_queue(id);
        let before = self.logged_in.fetch_add(1, Ordering::SeqCst);
        if before >= self.limits.max_connections {
            self.logged_in.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// A logged-in connection ended.
    pub fn log_out(&self) {
        self.logged_in.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn logged_in(&self) -> usize {
        self.logged_in.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Prints a log line unless too many were printed this second.
    pub fn log(&self, line: &str) {
        self.log.line(line);
    }
}

/// At most `per_second` lines a second; the rest are counted and reported once.
pub struct LogLimiter {
    per_second: u32,
    state: Mutex<(Instant, u32, u64)>,
}

impl LogLimiter {
    pub fn new(per_second: u32) -> LogLimiter {
        LogLimiter {
            per_second,
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    pub fn line(&self, line: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0.elapsed() >= Duration::from_secs(1) {
            if s.2 > 0 {
                crate::errln!("({} similar log lines suppressed)", s.2);
            }
            *s = (Instant::now(), 0, 0);
        }
        if s.1 < self.per_second {
            s.1 += 1;
            crate::errln!("{line}");
        } else {
            s.2 += 1;
        }
    }
}

/// How long the accept loop waits after an error: 10 ms doubling to a second while errors
/// repeat (out of file descriptors: wait for connections to end rather than spin).
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            next: Duration::from_millis(10),
        }
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(10);
    }

    pub fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(1));
        now
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// MySQL's ERR packet for "Too many connections" (1040, SQLSTATE 08004), sent instead of the
/// handshake to a client that cannot be admitted.
pub fn too_many_connections() -> Vec<u8> {
    let message = b"Too many connections";
    let mut payload = vec![0xff];
    payload.extend_from_slice(&1040u16.to_le_bytes());
    payload.extend_from_slice(b"#08004");
    payload.extend_from_slice(message);
    let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend_from_slice(&payload);
    packet
}

/// A panic a client can provoke in the protocol library (opensrv-mysql's parameter parser; it
/// is caught, see `prepared.rs`) prints through a rate limit, so that a client sending
/// malformed packets cannot fill the disk with reports.
pub fn rate_limit_panics() {
    let limiter = LogLimiter::new(5);
    std::panic::set_hook(Box::new(move |info| {
        limiter.line(&format!("panic (caught where it can be): {info}"))
    }));
}

/// Raises this process's open-file limit to its hard limit (best effort): the server's
/// connections and each session's catalog need descriptors.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_waiting_connection_makes_room_and_logins_are_capped() {
        let a = Admission::new(Limits {
            max_connections: 2,
            max_pending: 2,
            login_timeout: Duration::from_secs(10),
        });
        let first = a.arrive(1);
        let _second = a.arrive(2);
        assert_eq!(a.waiting(), 2);
        let _third = a.arrive(3);
        assert_eq!(a.waiting(), 2);
        // The first was told to go.
        use futures::FutureExt;
        assert!(first.notified().now_or_never().is_some());
        assert!(a.log_in(2));
        assert!(a.log_in(3));
        assert!(!a.log_in(4), "a third login is over the cap");
        a.log_out();
        assert!(a.log_in(4));
        assert_eq!(a.logged_in(), 2);
        assert_eq!(a.waiting(), 0);
    }

    #[test]
    fn the_refusal_is_a_mysql_error_packet() {
        let p = too_many_connections();
        assert_eq!(p[3], 0);
        assert_eq!(p[4], 0xff);
        assert_eq!(u16::from_le_bytes([p[5], p[6]]), 1040);
        assert_eq!(&p[7..13], b"#08004");
        assert_eq!(
            u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize,
            p.len() - 4
        );
    }
}
