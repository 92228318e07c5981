//! `srbackup serve`: the MySQL client/server protocol in front of a cluster, so StarRocks
//! users keep their `mysql>` prompt, drivers and IDEs.
//!
//! - [`framing`]: the socket → one packet per read → opensrv-mysql (protocol library).
//! - `connection`: the handshake's password check and each query's reply packets.
//! - `worker`: each connection's session on a thread of its own; BACKUP and RESTORE are
//!   accepted there and run as jobs on job threads (StarRocks' asynchronous job model).
//! - [`compat`]: what drivers send that is not an srbackup statement (`SET NAMES`, `@@…`).
//! - [`auth`]: users and `mysql_native_password` from the cluster's `srbackup.conf`.

#[cfg(feature = "engine")]
pub mod auth;
#[cfg(feature = "engine")]
pub mod compat;
#[cfg(feature = "engine")]
mod connection;
pub mod framing;
#[cfg(feature = "engine")]
mod worker;

#[cfg(feature = "engine")]
pub use serve_impl::*;

#[cfg(feature = "engine")]
mod serve_impl {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::Arc;

    use opensrv_mysql::AsyncMysqlIntermediary;
    use tokio::net::TcpListener;

    use super::auth::Users;
    use super::connection::Connection;
    use super::framing::OnePacketPerRead;
    use super::worker::{JobStart, Peer, Shared, Worker, launch};
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
        let users = Users::from_config(&settings.users);
        if !options.listen.ip().is_loopback() {
            let open = users.without_password();
            if !open.is_empty() {
                return Err(Error::invalid(
                    format!(
                        "listening on {} needs a password for every user, and {} has none",
                        options.listen,
                        open.join(", ")
                    ),
                    Some(
                        "add `user.<name> = *<hash>` lines to srbackup.conf in the cluster directory (`srbackup password` prints the hash), or listen on 127.0.0.1",
                    ),
                ));
            }
        }
        let shared = Arc::new(Shared {
            cluster: options.cluster.clone(),
            runtime: tokio::runtime::Handle::current(),
            snapshot_time: std::env::var("SRBACKUP_SNAPSHOT_TIME").ok(),
        });
        // Opening the cluster creates it on first use; jobs a previous server left
        // unfinished go on where their journals say.
        let mut engine = Engine::open(&options.cluster)?;
        for job in exec::interrupted(&mut engine)? {
            eprintln!(
                "resuming {} job {} ({}) from {}",
                job.kind.keyword(),
                job.id,
                job.label,
                job.state
            );
            if let Err(e) = launch(&shared, JobStart::Resume(job.id)) {
                eprintln!("job {}: cannot start a thread: {e}", job.id);
            }
        }
        drop(engine);

        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|e| Error::Invalid {
                message: format!("cannot listen on {}: {e}", options.listen),
                help: None,
            })?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::invalid(e.to_string(), None))?;
        // Scripts wait for this line (and read the port from it with --listen 127.0.0.1:0).
        println!(
            "srbackup serve: listening on {address} (cluster {})",
            options.cluster.display()
        );
        let users = Arc::new(users);
        let mut next_id: u32 = 1;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let id = next_id;
                    next_id = next_id.wrapping_add(1).max(1);
                    let peer = Arc::new(Peer {
                        connection_id: id,
                        address: peer,
                        user: std::sync::OnceLock::new(),
                    });
                    let worker = match Worker::start(shared.clone(), peer.clone()) {
                        Ok(w) => w,
                        Err(e) => {
                            eprintln!("connection {id} from {}: cannot start a session: {e}", peer.address);
                            continue;
                        }
                    };
                    let connection = Connection::new(peer.clone(), users.clone(), worker);
                    tokio::spawn(async move {
                        let (read, write) = stream.into_split();
                        let result = AsyncMysqlIntermediary::run_on(
                            connection,
                            OnePacketPerRead::new(read),
                            write,
                        )
                        .await;
                        if let Err(e) = result {
                            use std::io::ErrorKind as K;
                            if !matches!(e.kind(), K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe) {
                                eprintln!("connection {id} from {}: {e}", peer.address);
                            }
                        }
                    });
                }
                _ = &mut stop => {
                    eprintln!("srbackup serve: stopping; unfinished jobs resume at the next start");
                    return Ok(());
                }
            }
        }
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
