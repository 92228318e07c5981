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
use super::auth::{SALT_LEN, Users, new_salt};
use super::worker::{Peer, Reply, SESSION_ENDED, Shared, Worker, session_ended};
use crate::results::ColumnKind;
use crate::sql::QuotedIdent;

const NATIVE_PASSWORD: &str = "mysql_native_password";
/// A reply out of order: a bug, reported to the client rather than panicking the server.
const UNEXPECTED: &str = "internal error: the session's replies came out of order";

pub struct Connection {
    peer: Arc<Peer>,
    /// One salt per connection: the library asks for it twice (greeting, then the check).
    salt: [u8; SALT_LEN],
    users: Arc<Users>,
    shared: Arc<Shared>,
    admission: Arc<Admission>,
    /// The session, started at the first request after the login: a connection that never
    /// logs in never opens the catalog or starts a thread.
    worker: Option<Worker>,
    /// The column definitions of the result being written (they must outlive the writer).
    columns: Vec<Column>,
}

impl Connection {
    pub fn new(
        peer: Arc<Peer>,
        users: Arc<Users>,
        shared: Arc<Shared>,
        admission: Arc<Admission>,
    ) -> Connection {
        Connection {
            peer,
            salt: new_salt(),
            users,
            shared,
            admission,
            worker: None,
            columns: Vec::new(),
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

fn column_type(kind: ColumnKind) -> ColumnType {
    match kind {
        ColumnKind::Text => ColumnType::MYSQL_TYPE_VAR_STRING,
        ColumnKind::Integer => ColumnType::MYSQL_TYPE_LONGLONG,
        ColumnKind::Float => ColumnType::MYSQL_TYPE_DOUBLE,
        ColumnKind::Decimal => ColumnType::MYSQL_TYPE_NEWDECIMAL,
        ColumnKind::Date => ColumnType::MYSQL_TYPE_DATE,
        ColumnKind::DateTime => ColumnType::MYSQL_TYPE_DATETIME,
    }
}

fn columns_of(names: &[String], kinds: &[ColumnKind]) -> Vec<Column> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Column {
            table: String::new(),
            column: name.clone(),
            coltype: column_type(kinds.get(i).copied().unwrap_or_default()),
            colflags: ColumnFlags::empty(),
        })
        .collect()
}

/// Text-protocol rows: every value as its text, NULL as NULL.
async fn write_rows<W: AsyncWrite + Send + Unpin>(
    writer: &mut RowWriter<'_, W>,
    rows: &[Vec<Option<String>>],
) -> std::io::Result<()> {
    for row in rows {
        for value in row {
            writer.write_col(value.as_deref())?;
        }
        writer.end_row().await?;
    }
    Ok(())
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
        NATIVE_PASSWORD
    }

    async fn auth_plugin_for_username(&self, _user: &[u8]) -> &str {
        NATIVE_PASSWORD
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
        let ok = auth_plugin == NATIVE_PASSWORD && self.users.verify(username, salt, auth_data);
        if ok {
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
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> std::io::Result<()> {
        info.error(
            ErrorKind::ER_UNSUPPORTED_PS,
            b"prepared statements are not supported; send statements as text (e.g. useServerPrepStmts=false)",
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        results
            .error(
                ErrorKind::ER_UNSUPPORTED_PS,
                b"prepared statements are not supported",
            )
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_init<'a>(
        &'a mut self,
        database: &'a str,
        writer: InitWriter<'a, W>,
    ) -> std::io::Result<()> {
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
        let worker = match self.worker() {
            Ok(w) => w,
            Err((code, message)) => return results.error(code, message.as_bytes()).await,
        };
        let mut replies = worker.run(query.to_string()).await;
        match replies.recv().await.unwrap_or_else(session_ended) {
            Reply::Rows(rs) => {
                self.columns = columns_of(&rs.columns, &rs.kinds);
                let columns: &'a [Column] = &self.columns;
                let mut rows = results.start(columns).await?;
                write_rows(&mut rows, &rs.rows).await?;
                rows.finish().await
            }
            Reply::Columns { columns, kinds } => {
                self.columns = columns_of(&columns, &kinds);
                let columns: &'a [Column] = &self.columns;
                let mut rows = results.start(columns).await?;
                loop {
                    match replies.recv().await.unwrap_or_else(session_ended) {
                        Reply::Batch(batch) => write_rows(&mut rows, &batch).await?,
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
