//! A connection's session, on a thread of its own, and the server's jobs, each on one too.
//!
//! A statement a client sent runs to its end on the session thread even if the client goes
//! away meanwhile: the connection only waits for the reply, and dropping that wait (a client
//! that disconnects) cannot stop a catalog change half-way. BACKUP and RESTORE are only
//! planned and accepted there (one job per database is checked then); the job itself runs on a
//! job thread with its own catalog connection, as a CLI process would.

use crate::code::Code;
use std::path::PathBuf;
use std::sync::Arc;

use opensrv_mysql::ErrorKind;
use tokio::sync::mpsc;

use super::compat::{self, Answer};
use crate::engine::Engine;
use crate::error::Error;
use crate::exec::{self, StartOptions, progress::Silent};
use crate::results::{ColumnKind, Output, ResultSet, Sink};
use crate::session::Session;
use crate::sql::{self, Problem, SqlError, Statement};

/// What the server sends back for a statement: one of `Rows`, `Ok` or `Error`, or a query's
/// rows as they come: `Columns`, any number of `Batch`es, then `End` (or `Error` if the query
/// fails half-way).
#[derive(Debug)]
pub enum Reply {
    Rows(ResultSet),
    Ok {
        affected: u64,
        info: String,
    },
    Error {
        code: ErrorKind,
        message: String,
    },
    Columns {
        columns: Vec<String>,
        kinds: Vec<ColumnKind>,
    },
    Batch(Vec<Vec<Option<String>>>),
    End,
}

/// Replies a query's rows may get ahead of the client by: memory stays bounded whatever the
/// result's size.
const REPLIES_IN_FLIGHT: usize = 4;

/// What every connection's session shares.
pub struct Shared {
    pub cluster: PathBuf,
    /// The server's runtime: session and job threads run their futures on it, so the
    /// transfers a job spawns use its worker threads.
    pub runtime: tokio::runtime::Handle,
    /// `SRBACKUP_SNAPSHOT_TIME` when the server started: every session's initial
    /// `srbackup_snapshot_time`.
    pub snapshot_time: Option<String>,
    /// Where the server listens (SHOW FRONTENDS / BACKENDS).
    pub listen: std::net::SocketAddr,
    /// When it started, `YYYY-MM-DD HH:MM:SS` UTC.
    pub started: String,
    /// What local paths sessions may use: `allowed_paths` only (they act for remote users).
    pub paths: crate::config::PathPolicy,
    /// The plugin the greeting names (`authentication_plugin`).
    pub auth_plugin: String,
}

/// The client a session serves.
#[derive(Debug)]
pub struct Peer {
    pub connection_id: u32,
    pub address: std::net::SocketAddr,
    /// Set once the handshake has checked the user's password.
    pub user: std::sync::OnceLock<String>,
    /// The host pattern of the account the login matched.
    pub host: std::sync::OnceLock<String>,
    /// Whether the connection switched to TLS (set before the login is checked).
    pub tls: std::sync::atomic::AtomicBool,
}

impl Peer {
    /// Who the session acts for (set at login; a session only starts after it).
    fn identity(&self) -> crate::session::privileges::Identity {
        crate::session::privileges::Identity::new(
            self.user.get().map(String::as_str).unwrap_or(""),
            self.host.get().map(String::as_str).unwrap_or("%"),
        )
    }

    /// `user@host`, as MySQL's `USER()` shows it.
    fn user_at_host(&self) -> String {
        let user = self.user.get().map(String::as_str).unwrap_or("");
        format!("{user}@{}", self.address.ip())
    }
}

struct Request {
    sql: String,
    reply: mpsc::Sender<Reply>,
}

/// The handle a connection holds on its session thread.
pub struct Worker {
    tx: mpsc::Sender<Request>,
}

impl Worker {
    pub fn start(shared: Arc<Shared>, peer: Arc<Peer>) -> std::io::Result<Worker> {
        let (tx, mut rx) = mpsc::channel::<Request>(1);
        std::thread::Builder::new()
            .name("srbackup-session".into())
            .stack_size(crate::engine::query::STATEMENT_STACK)
            .spawn(move || {
                let open = || {
                    Session::open(&shared.cluster)
                        .map(|mut s| {
                            s.set_path_policy(shared.paths.clone());
                            s.set_identity(peer.identity());
                            s
                        })
                        .map_err(|e| e.to_string())
                };
                let mut session = open();
                let mut variables = compat::Variables::new(shared.snapshot_time.clone());
                // Ends when the connection drops its sender (the client went away).
                while let Some(request) = rx.blocking_recv() {
                    let reply = match &mut session {
                        // A bug that panics fails its statement, not the connection: the
                        // client gets an error, and the session starts afresh (catalog
                        // changes are transactions, so nothing is left half-done).
                        Ok(s) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                            || {
                                shared.runtime.block_on(run(
                                    s,
                                    &shared,
                                    &peer,
                                    &mut variables,
                                    &request.sql,
                                    &request.reply,
                                ))
                            },
                        )) {
                            Ok(reply) => reply,
                            Err(_) => {
                                session = open();
                                Reply::Error {
                                    code: ErrorKind::ER_UNKNOWN_ERROR,
                                    message: "internal error: the statement failed (a bug; the server log says where); the session was reset, run USE again".into(),
                                }
                            }
                        },
                        Err(e) => Reply::Error {
                            code: ErrorKind::ER_UNKNOWN_ERROR,
                            message: format!("cannot open the cluster: {e}"),
                        },
                    };
                    // The client may have gone; the statement has run to its end regardless.
                    let _ = request.reply.blocking_send(reply);
                }
            })?;
        Ok(Worker { tx })
    }

    /// Runs `sql` on the session thread; its replies arrive on the receiver.
    pub async fn run(&self, sql: String) -> mpsc::Receiver<Reply> {
        let (reply, rx) = mpsc::channel(REPLIES_IN_FLIGHT);
        // If the session thread is gone, the sender is dropped with the request and the
        // receiver ends at once (the connection reports that).
        let _ = self.tx.send(Request { sql, reply }).await;
        rx
    }
}

pub const SESSION_ENDED: &str = "the session ended unexpectedly";

/// The reply of a session that ended without one.
pub fn session_ended() -> Reply {
    Reply::Error {
        code: ErrorKind::ER_UNKNOWN_ERROR,
        message: SESSION_ENDED.into(),
    }
}

/// Hands a query's rows to the connection as they come. The session thread waits while the
/// connection is [`REPLIES_IN_FLIGHT`] replies behind; if the client has gone, the rest of the
/// rows are dropped.
struct RowSender<'r> {
    reply: &'r mpsc::Sender<Reply>,
    gone: bool,
}

impl RowSender<'_> {
    fn send(&mut self, r: Reply) {
        // This thread runs the session and nothing else; waiting here is the back-pressure.
        if !self.gone && futures::executor::block_on(self.reply.send(r)).is_err() {
            self.gone = true;
        }
    }
}

impl Sink for RowSender<'_> {
    fn output(&mut self, _: &Statement, _: &Output) {}
    fn begin_rows(&mut self, _: &str, columns: &[String], kinds: &[ColumnKind]) {
        self.send(Reply::Columns {
            columns: columns.to_vec(),
            kinds: kinds.to_vec(),
        });
    }
    fn rows(&mut self, rows: Vec<Vec<Option<String>>>) {
        self.send(Reply::Batch(rows));
    }
    fn end_rows(&mut self, _total: u64) {}
}

async fn run(
    session: &mut Session,
    shared: &Arc<Shared>,
    peer: &Peer,
    variables: &mut compat::Variables,
    sql: &str,
    reply: &mpsc::Sender<Reply>,
) -> Reply {
    if let Some(needs) = compat::needs_operate(sql)
        && let Err(e) = session.authorize_needs(&needs)
    {
        return error_reply(e, sql);
    }
    let user = peer.user_at_host();
    let account = session.owner();
    let roles = if sql.to_ascii_lowercase().contains("current_role") {
        session.active_roles().ok()
    } else {
        None
    };
    let client = compat::Client {
        database: session.current_database(),
        user: &user,
        account: &account,
        roles: roles.as_deref(),
        connection_id: peer.connection_id,
        listen: Some(shared.listen),
        started: &shared.started,
    };
    if let Some(answer) = compat::answer(sql, client, variables) {
        return match answer {
            Answer::Ok => ok(""),
            Answer::Rows(rs) => Reply::Rows(rs),
            Answer::RowsWhere { rows, condition } => {
                match crate::session::filter_rows(rows, &condition).await {
                    Ok(rs) => Reply::Rows(rs),
                    Err(e) => error_reply(e.into(), sql),
                }
            }
            Answer::Set(values) => {
                variables.apply(values);
                ok("")
            }
            Answer::Error { code, message } => Reply::Error { code, message },
        };
    }
    let statements = match sql::parse_named("query", sql) {
        Ok(s) => s,
        Err(e) => return sql_error(&e, sql),
    };
    let stmt = match statements.as_slice() {
        [] => return ok(""),
        [one] => one,
        many => {
            return Reply::Error {
                code: ErrorKind::ER_PARSE_ERROR,
                message: format!(
                    "send one statement per query; this query holds {} (the mysql client splits a script at `;` itself)",
                    many.len()
                ),
            };
        }
    };
    // The one privilege check, before anything is planned or touched.
    if let Err(e) = session.authorize(stmt) {
        return error_reply(e, sql);
    }
    let span = stmt.span();
    let text = sql.get(span.start..span.end).unwrap_or(sql);
    match stmt {
        Statement::Backup(_) | Statement::Restore(_) => {
            let owner = session.owner();
            let options = StartOptions {
                snapshot_time: variables.snapshot_time(),
                owner: &owner,
            };
            match exec::submit(session.engine(), stmt, text, options).await {
                Ok(job_id) => {
                    let kind = if matches!(stmt, Statement::Backup(_)) {
                        "BACKUP"
                    } else {
                        "RESTORE"
                    };
                    match launch(shared, JobStart::Run(job_id)) {
                        Ok(()) => ok(&format!(
                            "{kind} job {job_id} accepted; SHOW {kind} shows its progress"
                        )),
                        Err(e) => Reply::Error {
                            code: ErrorKind::ER_UNKNOWN_ERROR,
                            message: format!(
                                "{kind} job {job_id} was accepted but cannot start ({e}); it resumes when the server restarts, CANCEL {kind} drops it"
                            ),
                        },
                    }
                }
                Err(e) => error_reply(session.for_client(e), sql),
            }
        }
        Statement::Query(q) => {
            // A query stops at the session's `query_timeout`, or when its client goes away
            // (dropping the stream stops DataFusion's work).
            let limit = variables.query_timeout();
            let mut rows = RowSender { reply, gone: false };
            tokio::select! {
                done = tokio::time::timeout(limit, session.stream_query(q, &mut rows)) => match done {
                    Ok(Ok(())) => Reply::End,
                    Ok(Err(e)) => error_reply(session.for_client(e), sql),
                    Err(_) => Reply::Error {
                        code: ErrorKind::ER_QUERY_INTERRUPTED,
                        message: format!(
                            "Query exceeded time limit of {} seconds (SET query_timeout = … for longer)",
                            limit.as_secs()
                        ),
                    },
                },
                () = reply.closed() => Reply::End,
            }
        }
        _ => match session.execute_text(stmt, sql).await {
            Ok(Output::Rows(rs)) => Reply::Rows(rs),
            Ok(Output::Done { message, affected }) => Reply::Ok {
                affected: affected.unwrap_or(0),
                info: info(&message),
            },
            Err(e) => error_reply(session.for_client(e), sql),
        },
    }
}

fn ok(info: &str) -> Reply {
    Reply::Ok {
        affected: 0,
        info: info.to_string(),
    }
}

/// A message without the "Query OK, N rows affected" the client prints itself.
fn info(message: &str) -> String {
    let rest = message.strip_prefix("Query OK").unwrap_or(message);
    let rest = rest.trim_start_matches([',', ';', ' ']);
    let rest = match rest.split_once(" rows affected") {
        Some((n, tail)) if n.chars().all(|c| c.is_ascii_digit()) => tail,
        _ => rest,
    };
    rest.trim_start_matches([',', ';', ' ']).to_string()
}

/// How a job thread starts.
#[derive(Clone, Copy, Debug)]
pub enum JobStart {
    /// A job this server just accepted.
    Run(i64),
    /// A job a previous server (or a CLI process) left unfinished.
    Resume(i64),
}

/// Runs a job on its own thread with its own catalog connection.
pub fn launch(shared: &Arc<Shared>, start: JobStart) -> std::io::Result<()> {
    let shared = shared.clone();
    let id = match start {
        JobStart::Run(id) | JobStart::Resume(id) => id,
    };
    std::thread::Builder::new()
        .name(format!("srbackup-job-{id}"))
        .stack_size(crate::engine::query::STATEMENT_STACK)
        .spawn(move || {
            let result =
                Engine::open(&shared.cluster)
                    .map_err(Error::from)
                    .and_then(|mut engine| {
                        shared.runtime.block_on(async {
                            match start {
                                JobStart::Run(id) => exec::run_job(&mut engine, id, &Silent)
                                    .await
                                    .map(|o| vec![o]),
                                JobStart::Resume(id) => {
                                    exec::resume(&mut engine, Some(id), &Silent).await
                                }
                            }
                        })
                    });
            match result {
                Ok(outcomes) => {
                    for o in outcomes {
                        crate::errln!("{}", o.summary());
                    }
                }
                Err(e) => crate::errln!("job {id}: {e}"),
            }
        })
        .map(|_| ())
}

/// Runs a scheduled drill on its own thread, and closes its run.
pub fn launch_drill(
    shared: &Arc<Shared>,
    in_flight: super::scheduler::InFlight,
    name: &str,
    run: i64,
    command: String,
) {
    let shared = shared.clone();
    let owned = name.to_string();
    let spawned = std::thread::Builder::new()
        .name(format!("srbackup-drill-{run}"))
        .stack_size(crate::engine::query::STATEMENT_STACK)
        .spawn(move || {
            let name = owned;
            let (result, job) = shared
                .runtime
                .block_on(crate::exec::drill::run_scheduled(&shared.cluster, &command));
            match &result {
                Ok(summary) => crate::errln!("schedule {name}: drill: {summary}"),
                Err(why) => crate::errln!("schedule {name}: drill failed: {why}"),
            }
            let closed = crate::catalog::Catalog::open(&shared.cluster.join("catalog.db"))
                .map_err(Error::from)
                .and_then(|mut catalog| {
                    super::scheduler::finish_drill(
                        &mut catalog,
                        &in_flight,
                        run,
                        job,
                        result,
                        crate::session::schedules::clock_now(),
                    )
                });
            if let Err(e) = closed {
                crate::errln!("schedule {name}: cannot record the drill's run {run}: {e}");
            }
        });
    if let Err(e) = spawned {
        crate::errln!("schedule {name}: cannot start the drill's thread: {e}");
    }
}

/// The MySQL error code of a diagnostic code: the few MySQL clients act on, else a parse
/// error for statements that do not hold together (as StarRocks reports analysis errors) and
/// an unknown error for failures while running.
fn mysql_code(code: Code, positioned: bool) -> ErrorKind {
    match code {
        c if c.is_syntax() => ErrorKind::ER_PARSE_ERROR,
        Code::EngineUnknownDatabase => ErrorKind::ER_BAD_DB_ERROR,
        Code::EngineNoDatabase => ErrorKind::ER_NO_DB_ERROR,
        Code::EngineUnknownObject => ErrorKind::ER_NO_SUCH_TABLE,
        Code::DdlExists | Code::RepoExists => ErrorKind::ER_TABLE_EXISTS_ERROR,
        // Sent as 5203 (server::codes).
        Code::AccessDenied => super::codes::ACCESS_DENIED,
        Code::DdlUnknownColumn | Code::LoadUnknownColumn | Code::ShowUnknownColumn => {
            ErrorKind::ER_BAD_FIELD_ERROR
        }
        Code::ShowUnsupported | Code::DmlUnsupported => ErrorKind::ER_NOT_SUPPORTED_YET,
        _ if positioned => ErrorKind::ER_PARSE_ERROR,
        _ => ErrorKind::ER_UNKNOWN_ERROR,
    }
}

/// One line: the message the CLI prints, where it is in the statement, and the help.
fn problem_message(p: &Problem, src: &str) -> String {
    // The statement may carry credentials: quote it masked, and mask what the message quotes.
    let p = &sql::mask_problem(p.clone(), src);
    let masked = sql::mask_secrets(src);
    let start = p.span.start.min(masked.len());
    let before = &masked[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let token: String = masked
        .get(start..p.span.end.min(masked.len()))
        .unwrap_or("")
        .chars()
        .take(40)
        .collect();
    let mut m = format!("{} (line {line}, column {column}", p.message);
    if !token.trim().is_empty() {
        m.push_str(&format!(", at `{}`", token.trim()));
    }
    if p.label != "here" {
        m.push_str(&format!(": {}", p.label));
    }
    m.push(')');
    if let Some(help) = &p.help {
        m.push_str(&format!("; {help}"));
    }
    m
}

fn sql_error(e: &SqlError, src: &str) -> Reply {
    let p = e.problem();
    Reply::Error {
        code: mysql_code(p.code, true),
        message: problem_message(p, src),
    }
}

fn error_reply(e: Error, src: &str) -> Reply {
    use miette::Diagnostic;
    match &e {
        Error::At(p) => Reply::Error {
            code: mysql_code(p.code, true),
            message: problem_message(p, src),
        },
        other => {
            let mut message = other.to_string();
            if let Some(help) = other.help() {
                message.push_str(&format!("; {help}"));
            }
            Reply::Error {
                code: mysql_code(other.error_code(), false),
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Span;

    #[test]
    fn messages_drop_what_the_client_prints_itself() {
        assert_eq!(info("Query OK, 0 rows affected"), "");
        assert_eq!(info("Query OK, 12 rows affected"), "");
        assert_eq!(
            info("Query OK, 0 rows affected (the table already exists)"),
            "(the table already exists)"
        );
        assert_eq!(info("Query OK, job 3 cancelled"), "job 3 cancelled");
        assert_eq!(
            info("Database changed to sr_hub"),
            "Database changed to sr_hub"
        );
    }

    #[test]
    fn errors_say_where_and_hide_credentials() {
        let src = "CREATE REPOSITORY r WITH BROKER ON LOCATION \"s3://b/p\"\nPROPERTIES (\"aws.s3.secret_key\" = \"TOPSECRET\", \"bogus\" = \"1\")";
        let at = src.find("\"bogus\"").unwrap();
        let p = Problem::new(
            Code::RepoUnknownProperty,
            Span::new(at, at + 7),
            "unknown property bogus",
        )
        .help("remove it");
        let m = problem_message(&p, src);
        assert_eq!(
            m,
            "unknown property bogus (line 2, column 48, at `\"bogus\"`); remove it"
        );
        let whole = Problem::new(Code::Internal, Span::new(0, src.len()), "bad");
        assert!(!problem_message(&whole, src).contains("TOPSECRET"));
        assert_eq!(mysql_code(Code::SyntaxEndOfInput, true) as u16, 1064);
        assert_eq!(mysql_code(Code::EngineUnknownObject, true) as u16, 1146);
        assert_eq!(mysql_code(Code::EngineInvalid, false) as u16, 1105);
    }
}
