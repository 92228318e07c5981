//! `srbackup serve`: the MySQL client/server protocol in front of a cluster, so StarRocks
//! users keep their `mysql>` prompt, drivers and IDEs.
//!
//! - [`framing`]: the socket → one packet per read → opensrv-mysql (protocol library).
//! - `connection`: the handshake's password check and each query's reply packets.
//! - `worker`: each connection's session on a thread of its own; BACKUP and RESTORE are
//!   accepted there and run as jobs on job threads (StarRocks' asynchronous job model).
//! - [`compat`]: what drivers send that is not an srbackup statement (`SET NAMES`, `@@…`).
//! - [`auth`]: logins against the catalog's accounts (`mysql_native_password`,
//!   `caching_sha2_password`), and `srbackup.conf`'s users migrated into it.

#[cfg(feature = "engine")]
mod admission;
#[cfg(feature = "engine")]
pub mod auth;
#[cfg(feature = "engine")]
mod codes;
#[cfg(feature = "engine")]
pub mod compat;
#[cfg(feature = "engine")]
mod connection;
pub mod framing;
#[cfg(feature = "engine")]
mod prepared;
#[cfg(feature = "engine")]
pub mod scheduler;
#[cfg(feature = "engine")]
pub mod tls;
#[cfg(feature = "engine")]
mod worker;

#[cfg(feature = "engine")]
pub use serve_impl::*;

#[cfg(feature = "engine")]
mod serve_impl {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::Arc;

    use tokio::net::TcpListener;

    use super::admission::{
        Admission, Backoff, Limits, raise_fd_limit, rate_limit_panics, too_many_connections,
    };
    use super::auth::Logins;
    use super::connection::Connection;
    use super::worker::{JobStart, Peer, Shared, launch};
    use crate::config::Settings;
    use crate::engine::Engine;
    use crate::error::{Error, Result};
    use crate::exec;

    /// Where the server listens and what it serves.
    #[derive(Clone, Debug)]
    pub struct ServeOptions {
        pub cluster: PathBuf,
        pub listen: SocketAddr,
    }

    /// Serves until SIGINT or SIGTERM. Jobs still running then are resumed, from their
    /// journals, by the next `srbackup serve` (or `srbackup resume`).
    pub async fn serve(options: ServeOptions) -> Result<()> {
        let settings = Settings::load(&options.cluster)?;
        // Opening the cluster creates it on first use (0700; see Engine::open).
        let mut engine = Engine::open(&options.cluster)?;
        // SAFETY: geteuid has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        let mut root_password = None;
        if as_root && settings.users.is_empty() {
            // Root reads every file: a passwordless root would be anyone on this machine.
            let (password, path) = super::auth::root_password(&options.cluster)
                .map_err(|e| Error::invalid(format!("cannot keep root's password: {e}"), None))?;
            root_password = Some(password);
            crate::errln!(
                "running as root: user root's password is in {} (only root can read it)",
                path.display()
            );
        }
        let migrated =
            super::auth::bootstrap(engine.catalog(), &settings, root_password.as_deref())?;
        if !migrated.is_empty() {
            crate::errln!(
                "accounts created from srbackup.conf: {} (from now on the catalog keeps them: ALTER USER, DROP USER)",
                migrated.join(", ")
            );
        }
        if settings.authentication_plugin == "caching_sha2_password" {
            let native_only = super::auth::native_only(engine.catalog())?;
            if !native_only.is_empty() {
                crate::errln!(
                    "warning: authentication_plugin = caching_sha2_password, and {} know only a mysql_native_password hash: their clients answer with SHA-256, so they cannot log in until ALTER USER … IDENTIFIED BY '…' (or `srbackup sql` on this machine) gives them their password again",
                    native_only.join(", ")
                );
            }
        }
        let open = super::auth::without_password(engine.catalog())?;
        if as_root && !open.is_empty() {
            return Err(Error::invalid(
                format!(
                    "srbackup serve runs as root, and {} has no password: anyone on this machine could connect as them",
                    open.join(", ")
                ),
                Some(
                    "give every user a password (ALTER USER … IDENTIFIED BY, or `srbackup password` for a `user.<name> = ` line of srbackup.conf before the first start), or run the server as an unprivileged user",
                ),
            ));
        }
        if !options.listen.ip().is_loopback() && !open.is_empty() {
            return Err(Error::invalid(
                format!(
                    "listening on {} needs a password for every user, and {} has none",
                    options.listen,
                    open.join(", ")
                ),
                Some(
                    "give them one (ALTER USER … IDENTIFIED BY on 127.0.0.1, or a `user.<name> = *<hash>` line of srbackup.conf: `srbackup password` prints it), or listen on 127.0.0.1",
                ),
            ));
        }
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|e| Error::Invalid {
                message: format!("cannot listen on {}: {e}", options.listen),
                help: None,
            })?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::invalid(e.to_string(), None))?;
        let shared = Arc::new(Shared {
            cluster: options.cluster.clone(),
            runtime: tokio::runtime::Handle::current(),
            snapshot_time: std::env::var("SRBACKUP_SNAPSHOT_TIME").ok(),
            listen: address,
            started: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            paths: crate::config::PathPolicy::remote(&settings, &options.cluster),
            auth_plugin: settings.authentication_plugin.clone(),
        });
        // Jobs a previous server left unfinished go on where their journals say.
        let mut resuming = Vec::new();
        for job in exec::interrupted(&mut engine)? {
            resuming.push(job.id);
            resume_job(&shared, &job, "");
        }
        drop(engine);
        start_scheduler(&shared, &resuming)?;

        // Scripts wait for this line (and read the port from it with --listen 127.0.0.1:0).
        crate::outln!(
            "srbackup serve: listening on {address} (cluster {})",
            options.cluster.display()
        );
        let logins = Arc::new(Logins::new(options.cluster.clone()));
        let policy = Arc::new(tls_policy(&settings, options.listen)?);
        raise_fd_limit();
        rate_limit_panics();
        let admission = Arc::new(Admission::new(Limits {
            max_connections: settings.max_connections,
            max_pending: settings.max_pending_logins,
            login_timeout: std::time::Duration::from_secs(settings.login_timeout_seconds),
        }));
        let mut backoff = Backoff::new();
        let mut next_id: u32 = 1;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (mut stream, peer) = match accepted {
                        Ok(x) => {
                            backoff.reset();
                            x
                        }
                        Err(e) => {
                            // Out of descriptors, say: wait for connections to end, quietly.
                            admission.log(&format!("accept: {e}"));
                            tokio::time::sleep(backoff.next()).await;
                            continue;
                        }
                    };
                    if admission.logged_in() >= admission.limits().max_connections {
                        tokio::spawn(async move {
                            use tokio::io::AsyncWriteExt;
                            let _ = stream.write_all(&too_many_connections()).await;
                        });
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let id = next_id;
                    next_id = next_id.wrapping_add(1).max(1);
                    let peer = Arc::new(Peer {
                        connection_id: id,
                        address: peer,
                        user: std::sync::OnceLock::new(),
                        host: std::sync::OnceLock::new(),
                        tls: std::sync::atomic::AtomicBool::new(false),
                    });
                    let evicted = admission.arrive(id);
                    let connection =
                        Connection::new(peer.clone(), logins.clone(), shared.clone(), admission.clone());
                    let admission = admission.clone();
                    let policy = policy.clone();
                    tokio::spawn(async move {
                        let (read, write) = stream.into_split();
                        let flag = peer.clone();
                        let run = super::tls::serve(
                            connection,
                            Box::new(read),
                            write,
                            peer.address.ip(),
                            &policy,
                            move || flag.tls.store(true, std::sync::atomic::Ordering::SeqCst),
                        );
                        tokio::pin!(run);
                        let login = tokio::time::sleep(admission.limits().login_timeout);
                        tokio::pin!(login);
                        let mut waiting = true;
                        let result = loop {
                            tokio::select! {
                                r = &mut run => break Some(r),
                                // Made room for a newer connection, or too slow to log in:
                                // closed (dropping the connection closes the socket).
                                _ = evicted.notified(), if waiting => {
                                    if peer.user.get().is_none() {
                                        break None;
                                    }
                                    waiting = false;
                                }
                                _ = &mut login, if waiting => {
                                    if peer.user.get().is_none() {
                                        break None;
                                    }
                                    waiting = false;
                                }
                            }
                        };
                        if let Some(Err(e)) = result {
                            use std::io::ErrorKind as K;
                            if !matches!(e.kind(), K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe) {
                                admission.log(&format!("connection {id} from {}: {e}", peer.address));
                            }
                        }
                    });
                }
                _ = &mut stop => {
                    crate::errln!("srbackup serve: stopping; unfinished jobs resume at the next start");
                    return Ok(());
                }
            }
        }
    }

    /// TLS from `ssl_cert`/`ssl_key`, and `ssl_force_secure_transport`; a warning when the
    /// server listens beyond loopback without TLS (passwords and data would cross the network
    /// in clear text).
    fn tls_policy(settings: &Settings, listen: SocketAddr) -> Result<super::tls::Policy> {
        let tls = match (&settings.ssl_cert, &settings.ssl_key) {
            (Some(cert), Some(key)) => Some(super::tls::load(cert, key).map_err(|e| {
                Error::invalid(
                    e,
                    Some("`scripts/tls-cert DIR` makes a self-signed pair for tests"),
                )
            })?),
            (None, None) => None,
            _ => {
                return Err(Error::invalid(
                    "srbackup.conf names only one of ssl_cert and ssl_key",
                    Some("give both, or neither"),
                ));
            }
        };
        if settings.ssl_force_secure_transport && tls.is_none() {
            return Err(Error::invalid(
                "ssl_force_secure_transport = true needs ssl_cert and ssl_key",
                None,
            ));
        }
        if tls.is_none() && !listen.ip().is_loopback() {
            crate::errln!(
                "warning: listening on {listen} without TLS: passwords' scrambles and all data cross the network in clear text (set ssl_cert and ssl_key in srbackup.conf)"
            );
        }
        Ok(super::tls::Policy {
            tls,
            force_secure_transport: settings.ssl_force_secure_transport,
        })
    }

    /// Resumes an interrupted job on a job thread, saying so (`why` ends the line).
    fn resume_job(shared: &Arc<Shared>, job: &crate::catalog::JobRow, why: &str) {
        crate::errln!(
            "resuming {} job {} ({}) from {}{why}",
            job.kind.keyword(),
            job.id,
            job.label,
            job.state
        );
        if let Err(e) = launch(shared, JobStart::Resume(job.id)) {
            crate::errln!("job {}: cannot start a thread: {e}", job.id);
        }
    }

    /// Every how many ticks the scheduler thread looks for jobs whose process is gone.
    const RESUME_CHECK_TICKS: u64 = 5;
    /// How long before a job this thread resumed may be resumed again (if it is interrupted
    /// again, say).
    const RESUME_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

    /// How often the scheduler looks at the schedules (a crontab's finest step is a second).
    const SCHEDULER_TICK: std::time::Duration = std::time::Duration::from_secs(1);

    /// Starts the scheduler thread: every tick fires what is due and starts its jobs.
    fn start_scheduler(shared: &Arc<Shared>, resuming: &[i64]) -> Result<()> {
        let resuming = resuming.to_vec();
        let mut scheduler = super::scheduler::Scheduler::open(&shared.cluster)?;
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("srbackup-scheduler".into())
            .stack_size(crate::engine::query::STATEMENT_STACK)
            .spawn(move || {
                // Jobs this thread resumed, and when: one whose process died after the server
                // started (or was still exiting when it started) is resumed here, once.
                let mut resumed: std::collections::HashMap<i64, std::time::Instant> = resuming
                    .iter()
                    .map(|id| (*id, std::time::Instant::now()))
                    .collect();
                let mut ticks: u64 = 0;
                loop {
                    ticks += 1;
                    if ticks.is_multiple_of(RESUME_CHECK_TICKS) {
                        resumed.retain(|_, at| at.elapsed() < RESUME_AGAIN_AFTER);
                        match scheduler.interrupted_jobs() {
                            Ok(jobs) => {
                                for job in jobs {
                                    if resumed.contains_key(&job.id) {
                                        continue;
                                    }
                                    resumed.insert(job.id, std::time::Instant::now());
                                    resume_job(&shared, &job, ": its process is gone");
                                }
                            }
                            Err(e) => crate::errln!("scheduler: {e}"),
                        }
                    }
                    match shared
                        .runtime
                        .block_on(scheduler.tick(crate::session::schedules::clock_now()))
                    {
                        Ok(tick) => {
                            for (name, job) in &tick.started {
                                crate::errln!("schedule {name}: BACKUP job {job} accepted");
                                if let Err(e) = launch(&shared, JobStart::Run(*job)) {
                                    crate::errln!("job {job}: cannot start a thread: {e}");
                                }
                            }
                            for (name, why) in &tick.failed {
                                crate::errln!("schedule {name}: run failed: {why}");
                            }
                            for name in &tick.skipped {
                                crate::errln!(
                                    "schedule {name}: skipped, its previous run is still going"
                                );
                            }
                            for (name, run, command) in tick.drills {
                                super::worker::launch_drill(
                                    &shared,
                                    scheduler.in_flight(),
                                    &name,
                                    run,
                                    command,
                                );
                            }
                        }
                        Err(e) => crate::errln!("scheduler: {e}"),
                    }
                    std::thread::sleep(SCHEDULER_TICK);
                }
            })
            .map(|_| ())
            .map_err(|e| Error::invalid(format!("cannot start the scheduler thread: {e}"), None))
    }

    async fn shutdown_signal() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
