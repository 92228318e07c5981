//! Which process holds something (a job, a load lease), and whether it still runs.
//!
//! A pid alone is not an identity: a killed process stays a zombie (its `/proc` entry exists)
//! until its parent reaps it, and the kernel reuses pids. A [`Process`] is the pid together
//! with its start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`), so a zombie
//! counts as dead and a new process that got the same pid is not mistaken for the old one.

/// A process, as recorded beside what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Start time in clock ticks since boot; 0 when unknown (rows written before it was
    /// recorded), in which case only the pid and the zombie state are checked.
    pub started: u64,
}

impl Process {
    /// This process.
    pub fn current() -> Process {
        let pid = std::process::id();
        Process {
            pid,
            started: stat(pid).map(|s| s.started).unwrap_or(0),
        }
    }

    /// Whether the process still runs (not a zombie, not a different process with its pid).
    pub fn is_alive(&self) -> bool {
        match stat(self.pid) {
            None => false,
            Some(s) if s.zombie => false,
            Some(s) => self.started == 0 || s.started == self.started,
        }
    }
}

/// Where pids mean the same process: this boot of this kernel (`boot_id`) and this pid
/// namespace (containers on one kernel share the boot id, not their pids). Two records with
/// the same machine name their processes in the same pid space; `None` when /proc does not
/// tell.
pub fn machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), namespace.to_string_lossy()))
}

struct Stat {
    zombie: bool,
    started: u64,
}

/// The state and start time of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields that follow start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?;
    let started = fields.get(19)?.parse().ok()?;
    Some(Stat {
        zombie: matches!(*state, "Z" | "X" | "x"),
        started,
    })
}

#[cfg(test)]
mod tests {
    use super::Process;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_it() {
        let me = Process::current();
        assert!(me.started > 0);
        assert!(me.is_alive());
        let impostor = Process {
            started: me.started + 1,
            ..me
        };
        assert!(!impostor.is_alive());
        assert!(
            !Process {
                pid: u32::MAX,
                started: 0
            }
            .is_alive()
        );
    }

    #[test]
    fn a_killed_child_that_is_not_reaped_yet_is_dead() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let p = Process {
            pid,
            started: super::stat(pid).unwrap().started,
        };
        assert!(p.is_alive());
        unsafe_kill(pid);
        // Not waited for: a zombie until reaped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while p.is_alive() {
            assert!(std::time::Instant::now() < deadline, "still alive");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        child.wait().unwrap();
    }

    fn unsafe_kill(pid: u32) {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
}
