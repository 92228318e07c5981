//! One client connection: the handshake (opensrv-mysql asks us to check the password) and
//! each query, handed to the connection's session thread and written back as a result set,
//! an OK packet or an error packet.

use std::sync::Arc;

use async_trait::async_trait;
use opensrv_mysql::{
    AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, InitWriter, OkResponse,
    ParamParser, QueryResultWriter, RowWriter, StatementMetaWriter,
};
use tokio::io::AsyncWrite;

use super::admission::Admission;
use super::auth::{Logins, Refusal, SALT_LEN, new_salt};
use super::worker::{Peer, Reply, SESSION_ENDED, Shared, Worker, session_ended};
use crate::results::ColumnKind;
use crate::sql::QuotedIdent;

/// A reply out of order: a bug, reported to the client rather than panicking the server.
const UNEXPECTED: &str = "internal error: the session's replies came out of order";

pub struct Connection {
    peer: Arc<Peer>,
    /// One salt per connection: the library asks for it twice (greeting, then the check).
    salt: [u8; SALT_LEN],
    logins: Arc<Logins>,
    shared: Arc<Shared>,
    admission: Arc<Admission>,
    /// The session, started at the first request after the login: a connection that never
    /// logs in never opens the catalog or starts a thread.
    worker: Option<Worker>,
    /// The column definitions of the result being written (they must outlive the writer).
    columns: Vec<Column>,
    /// Prepared statements (COM_STMT_PREPARE), by id.
    statements: super::prepared::Statements,
    /// The parameter definitions of the statement being prepared (they must outlive the
    /// writer).
    params: Vec<Column>,
}

impl Connection {
    pub fn new(
        peer: Arc<Peer>,
        logins: Arc<Logins>,
        shared: Arc<Shared>,
        admission: Arc<Admission>,
    ) -> Connection {
        Connection {
            peer,
            salt: new_salt(),
            logins,
            shared,
            admission,
            worker: None,
            columns: Vec::new(),
            statements: Default::default(),
            params: Vec::new(),
        }
    }

    /// The session of a logged-in connection, started on first use; `Err` when the server
    /// is full or the session cannot start.
    fn worker(&mut self) -> Result<&Worker, (ErrorKind, String)> {
        if self.worker.is_none() {
            if self.peer.user.get().is_none() {
                return Err((ErrorKind::ER_ACCESS_DENIED_ERROR, "not logged in".into()));
            }
            if !self.admission.log_in(self.peer.connection_id) {
                return Err((ErrorKind::ER_CON_COUNT_ERROR, "Too many connections".into()));
            }
            match Worker::start(self.shared.clone(), self.peer.clone()) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    self.admission.log_out();
                    return Err((
                        ErrorKind::ER_UNKNOWN_ERROR,
                        format!("cannot start a session: {e}"),
                    ));
                }
            }
        }
        Ok(self.worker.as_ref().expect("started above"))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.admission.log_out();
        }
        self.admission.leave_queue(self.peer.connection_id);
    }
}

fn column_type(kind: ColumnKind, binary: bool) -> ColumnType {
    match kind {
        // A binary LONGLONG holds 64 bits; LARGEINT's digits go as a decimal number.
        ColumnKind::LargeInt if binary => ColumnType::MYSQL_TYPE_NEWDECIMAL,
        ColumnKind::Text => ColumnType::MYSQL_TYPE_VAR_STRING,
        // StarRocks sends BOOLEAN as MySQL's BOOL: TINYINT(1).
        ColumnKind::Boolean | ColumnKind::TinyInt => ColumnType::MYSQL_TYPE_TINY,
        ColumnKind::SmallInt => ColumnType::MYSQL_TYPE_SHORT,
        ColumnKind::Int => ColumnType::MYSQL_TYPE_LONG,
        ColumnKind::Integer => ColumnType::MYSQL_TYPE_LONGLONG,
        // 128-bit digits: drivers read an integer type of any length as an integer
        // (DECIMAL would come back as a decimal number).
        ColumnKind::LargeInt => ColumnType::MYSQL_TYPE_LONGLONG,
        ColumnKind::Float => ColumnType::MYSQL_TYPE_FLOAT,
        ColumnKind::Double => ColumnType::MYSQL_TYPE_DOUBLE,
        ColumnKind::Decimal => ColumnType::MYSQL_TYPE_NEWDECIMAL,
        ColumnKind::Date => ColumnType::MYSQL_TYPE_DATE,
        ColumnKind::DateTime => ColumnType::MYSQL_TYPE_DATETIME,
    }
}

fn columns_of(names: &[String], kinds: &[ColumnKind], binary: bool) -> Vec<Column> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Column {
            table: String::new(),
            column: name.clone(),
            coltype: column_type(kinds.get(i).copied().unwrap_or_default(), binary),
            colflags: ColumnFlags::empty(),
        })
        .collect()
}

/// Rows: in the text protocol every value as its text, in the binary protocol (prepared
/// statements) as a value of its column's type; NULL as NULL.
async fn write_rows<W: AsyncWrite + Send + Unpin>(
    writer: &mut RowWriter<'_, W>,
    rows: &[Vec<Option<String>>],
    kinds: &[ColumnKind],
    binary: bool,
) -> std::io::Result<()> {
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if binary {
                let kind = kinds.get(i).copied().unwrap_or_default();
                write_binary(writer, kind, value.as_deref())?;
            } else {
                writer.write_col(value.as_deref())?;
            }
        }
        writer.end_row().await?;
    }
    Ok(())
}

/// One value in the binary protocol, typed as its column ([`column_type`] with `binary`).
fn write_binary<W: AsyncWrite + Send + Unpin>(
    writer: &mut RowWriter<'_, W>,
    kind: ColumnKind,
    value: Option<&str>,
) -> std::io::Result<()> {
    let Some(text) = value else {
        return writer.write_col(None::<i64>);
    };
    let bad = |_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{text:?} is not a value of its column's type ({kind:?})"),
        )
    };
    match kind {
        ColumnKind::Boolean | ColumnKind::TinyInt => {
            writer.write_col(text.parse::<i8>().map_err(|e| bad(e.to_string()))?)
        }
        ColumnKind::SmallInt => {
            writer.write_col(text.parse::<i16>().map_err(|e| bad(e.to_string()))?)
        }
        ColumnKind::Int => writer.write_col(text.parse::<i32>().map_err(|e| bad(e.to_string()))?),
        ColumnKind::Integer => {
            writer.write_col(text.parse::<i64>().map_err(|e| bad(e.to_string()))?)
        }
        ColumnKind::Float => writer.write_col(text.parse::<f32>().map_err(|e| bad(e.to_string()))?),
        ColumnKind::Double => {
            writer.write_col(text.parse::<f64>().map_err(|e| bad(e.to_string()))?)
        }
        ColumnKind::Date => writer.write_col(
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| bad(e.to_string()))?,
        ),
        ColumnKind::DateTime => writer.write_col(
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|e| bad(e.to_string()))?,
        ),
        ColumnKind::LargeInt | ColumnKind::Decimal | ColumnKind::Text => writer.write_col(text),
    }
}

/// The kinds a complete result's columns can be sent as in the binary protocol: a column
/// whose text does not read as its kind (a SHOW cell such as "N/A" under a number) goes as
/// text.
fn binary_kinds(rs: &crate::results::ResultSet) -> Vec<ColumnKind> {
    (0..rs.columns.len())
        .map(|i| {
            let kind = rs.kinds.get(i).copied().unwrap_or_default();
            let fits = |t: &str| match kind {
                ColumnKind::Boolean | ColumnKind::TinyInt => t.parse::<i8>().is_ok(),
                ColumnKind::SmallInt => t.parse::<i16>().is_ok(),
                ColumnKind::Int => t.parse::<i32>().is_ok(),
                ColumnKind::Integer => t.parse::<i64>().is_ok(),
                ColumnKind::Float => t.parse::<f32>().is_ok(),
                ColumnKind::Double => t.parse::<f64>().is_ok(),
                ColumnKind::Date => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok(),
                ColumnKind::DateTime => {
                    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").is_ok()
                }
                ColumnKind::LargeInt | ColumnKind::Decimal | ColumnKind::Text => true,
            };
            if rs
                .rows
                .iter()
                .all(|r| r.get(i).and_then(|v| v.as_deref()).is_none_or(fits))
            {
                kind
            } else {
                ColumnKind::Text
            }
        })
        .collect()
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Connection {
    type Error = std::io::Error;

    fn version(&self) -> String {
        super::compat::server_version()
    }

    fn connect_id(&self) -> u32 {
        self.peer.connection_id
    }

    fn default_auth_plugin(&self) -> &str {
        &self.shared.auth_plugin
    }

    /// The greeting's plugin for everyone: the library switches plugins only for an empty
    /// answer, and the answer's length tells which plugin the client scrambled with (20
    /// bytes native, 32 caching_sha2), so each account is checked with what its client sent.
    async fn auth_plugin_for_username(&self, _user: &[u8]) -> &str {
        &self.shared.auth_plugin
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(
        &self,
        auth_plugin: &str,
        username: &[u8],
        salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let _ = auth_plugin;
        let logins = self.logins.clone();
        let (user, salt, answer) = (username.to_vec(), salt.to_vec(), auth_data.to_vec());
        let ip = self.peer.address.ip();
        let tls = self.peer.tls.load(std::sync::atomic::Ordering::SeqCst);
        // The catalog is SQLite: read it off the connection's task.
        let checked =
            tokio::task::spawn_blocking(move || logins.check(&user, ip, tls, &salt, &answer))
                .await
                .unwrap_or(Err(Refusal::NoAccount));
        let ok = checked.is_ok();
        if let Err(Refusal::NeedsTls) = &checked {
            {
                self.admission.log(&format!(
                    "connection {} from {}: user {} requires SSL",
                    self.peer.connection_id,
                    self.peer.address,
                    String::from_utf8_lossy(username)
                ));
            }
        }
        if let Ok(host) = checked {
            let _ = self.peer.host.set(host);
            let _ = self
                .peer
                .user
                .set(String::from_utf8_lossy(username).into_owned());
            // Logged in: no longer one of the connections waiting to.
            self.admission.leave_queue(self.peer.connection_id);
        }
        ok
    }

    async fn on_prepare<'a>(
        &'a mut self,
        query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> std::io::Result<()> {
        if let Err((code, message)) = self.worker() {
            return info.error(code, message.as_bytes()).await;
        }
        let prepared = super::prepared::Prepared::new(query);
        let params = prepared.params();
        match self.statements.add(prepared) {
            Ok(id) => {
                self.params = (0..params)
                    .map(|i| Column {
                        table: String::new(),
                        column: format!("?{i}"),
                        coltype: ColumnType::MYSQL_TYPE_VAR_STRING,
                        colflags: ColumnFlags::empty(),
                    })
                    .collect();
                // No columns yet: the result's come with each execution (drivers take them
                // from there).
                let params: &'a [Column] = &self.params;
                info.reply(id, params, &[]).await
            }
            Err(message) => {
                info.error(
                    ErrorKind::ER_MAX_PREPARED_STMT_COUNT_REACHED,
                    message.as_bytes(),
                )
                .await
            }
        }
    }

    async fn on_execute<'a>(
        &'a mut self,
        id: u32,
        params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        let Some(prepared) = self.statements.get(id).cloned() else {
            return results
                .error(
                    ErrorKind::ER_UNKNOWN_STMT_HANDLER,
                    format!(
                        "Unknown prepared statement handler ({id}) given to mysqld_stmt_execute"
                    )
                    .as_bytes(),
                )
                .await;
        };
        let values = match super::prepared::literals(params) {
            Ok(v) => v,
            Err((code, message)) => return results.error(code, message.as_bytes()).await,
        };
        match prepared.bind(&values) {
            Ok(sql) => self.respond(sql, results, true).await,
            Err(message) => {
                results
                    .error(ErrorKind::ER_WRONG_ARGUMENTS, message.as_bytes())
                    .await
            }
        }
    }

    async fn on_close<'a>(&'a mut self, stmt: u32)
    where
        W: 'async_trait,
    {
        self.statements.remove(stmt);
    }

    async fn on_init<'a>(
        &'a mut self,
        database: &'a str,
        writer: InitWriter<'a, W>,
    ) -> std::io::Result<()> {
        if database.is_empty() {
            // A driver that sends an empty database name (mysql-connector's pure-Python path
            // with no database) means none.
            return writer.ok().await;
        }
        let sql = format!("USE {}", QuotedIdent(database));
        let worker = match self.worker() {
            Ok(w) => w,
            Err((code, message)) => return writer.error(code, message.as_bytes()).await,
        };
        match worker.run(sql).await.recv().await {
            Some(Reply::Error { code, message }) => writer.error(code, message.as_bytes()).await,
            Some(_) => writer.ok().await,
            None => {
                writer
                    .error(ErrorKind::ER_UNKNOWN_ERROR, SESSION_ENDED.as_bytes())
                    .await
            }
        }
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        self.respond(query.to_string(), results, false).await
    }
}

impl Connection {
    /// Runs `sql` in the session and writes its reply: rows in the text protocol, or in the
    /// binary protocol for a prepared statement's execution.
    async fn respond<'a, W: AsyncWrite + Send + Unpin>(
        &'a mut self,
        sql: String,
        results: QueryResultWriter<'a, W>,
        binary: bool,
    ) -> std::io::Result<()> {
        let worker = match self.worker() {
            Ok(w) => w,
            Err((code, message)) => return results.error(code, message.as_bytes()).await,
        };
        let mut replies = worker.run(sql).await;
        match replies.recv().await.unwrap_or_else(session_ended) {
            Reply::Rows(rs) => {
                let kinds = if binary {
                    binary_kinds(&rs)
                } else {
                    rs.kinds.clone()
                };
                self.columns = columns_of(&rs.columns, &kinds, binary);
                let columns: &'a [Column] = &self.columns;
                let mut rows = results.start(columns).await?;
                write_rows(&mut rows, &rs.rows, &kinds, binary).await?;
                rows.finish().await
            }
            Reply::Columns { columns, kinds } => {
                self.columns = columns_of(&columns, &kinds, binary);
                let columns: &'a [Column] = &self.columns;
                let mut rows = results.start(columns).await?;
                loop {
                    match replies.recv().await.unwrap_or_else(session_ended) {
                        Reply::Batch(batch) => {
                            write_rows(&mut rows, &batch, &kinds, binary).await?
                        }
                        Reply::End => return rows.finish().await,
                        // The query failed after its first rows.
                        Reply::Error { code, message } => {
                            return rows.finish_error(code, &message.into_bytes()).await;
                        }
                        _ => {
                            return rows
                                .finish_error(
                                    ErrorKind::ER_UNKNOWN_ERROR,
                                    &UNEXPECTED.as_bytes().to_vec(),
                                )
                                .await;
                        }
                    }
                }
            }
            Reply::Ok { affected, info } => {
                results
                    .completed(OkResponse {
                        affected_rows: affected,
                        info,
                        ..Default::default()
                    })
                    .await
            }
            Reply::Error { code, message } => results.error(code, message.as_bytes()).await,
            Reply::Batch(_) | Reply::End => {
                results
                    .error(ErrorKind::ER_UNKNOWN_ERROR, UNEXPECTED.as_bytes())
                    .await
            }
        }
    }
}
