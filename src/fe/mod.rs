//! The StarRocks target (#19): a live StarRocks FE over the MySQL protocol. srbackup plans
//! against what it reads here (`catalog`) and drives StarRocks' own BACKUP and RESTORE jobs
//! (`jobs`); StarRocks moves the bytes from every backend to the repository.
//!
//! Only StarRocks 3.x's documented statements are sent, always as COM_QUERY (text protocol):
//! StarRocks refuses some statements as prepared statements. The client is mysql_async with
//! its one startup query switched off (see Cargo.toml); one connection per target, no pool.

pub mod catalog;
pub mod index;
pub mod jobs;

use std::fmt;
use std::time::Duration;

use mysql_async::prelude::Queryable;

/// What went wrong talking to the FE.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FeError {
    /// The `--cluster starrocks://…` text is not one srbackup understands.
    #[error("{message}")]
    #[diagnostic(code(srbackup::starrocks::url))]
    Url {
        message: String,
        #[help]
        help: Option<String>,
    },
    /// No connection (refused, TLS, login).
    #[error("cannot connect to the StarRocks FE at {address}: {message}")]
    #[diagnostic(code(srbackup::starrocks::connect))]
    Connect { address: String, message: String },
    /// The FE answered a statement with an error.
    #[error("the StarRocks FE refused `{statement}`: ERROR {code} ({state}): {message}")]
    #[diagnostic(code(srbackup::starrocks::refused))]
    Refused {
        statement: String,
        code: u16,
        state: String,
        message: String,
    },
    /// The FE answered with something srbackup cannot read (a missing column, a number that is
    /// not one): StarRocks' output changed, or this is not StarRocks.
    #[error("the StarRocks FE's answer to `{statement}` cannot be read: {message}")]
    #[diagnostic(code(srbackup::starrocks::answer))]
    Answer { statement: String, message: String },
    /// The connection broke mid-statement.
    #[error("the connection to the StarRocks FE broke during `{statement}`: {message}")]
    #[diagnostic(code(srbackup::starrocks::io))]
    Io { statement: String, message: String },
}

pub type Result<T, E = FeError> = std::result::Result<T, E>;

/// When to use TLS: `prefer` (the default: TLS when the FE offers it), `require`, `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Prefer,
    Require,
    Off,
}

/// `starrocks://USER@HOST:PORT[?tls=prefer|require|off&ca=PATH]`. Never holds a password: the
/// password comes from `SRBACKUP_PASSWORD` or a prompt and lives only in [`Fe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// PEM file of the CA that signed the FE's certificate (a private CA, or a self-signed FE).
    pub ca: Option<std::path::PathBuf>,
}

impl ClusterUrl {
    /// Whether a `--cluster` value names a StarRocks FE (rather than an embedded cluster's
    /// directory).
    pub fn is_url(text: &str) -> bool {
        text.starts_with("starrocks://")
    }

    pub fn parse(text: &str) -> Result<ClusterUrl> {
        let bad = |message: String| FeError::Url {
            message,
            help: Some(
                "write --cluster starrocks://USER@HOST:PORT (the password comes from \
                 SRBACKUP_PASSWORD or a prompt; add ?tls=require|off or &ca=PATH to choose TLS)"
                    .into(),
            ),
        };
        let rest = text
            .strip_prefix("starrocks://")
            .ok_or_else(|| bad(format!("`{text}` is not a starrocks:// address")))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (user, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad(format!("`{text}` names no user (USER@HOST:PORT)")))?;
        if user.contains(':') {
            return Err(FeError::Url {
                message: "the starrocks:// address holds a password; it would be seen in the \
                          process list and shell history"
                    .into(),
                help: Some("give the password in SRBACKUP_PASSWORD, or at the prompt".into()),
            });
        }
        if user.is_empty() || user.len() > 64 {
            return Err(bad(format!("`{user}` is not a user name")));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(format!("`{p}` is not a port number")))?,
            ),
            _ => (hostport, 9030),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(bad(format!("`{host}` is not a host name or address")));
        }
        let mut url = ClusterUrl {
            user: user.to_string(),
            host: host.to_string(),
            port,
            tls: TlsMode::Prefer,
            ca: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", "prefer")) => url.tls = TlsMode::Prefer,
                Some(("tls", "require")) => url.tls = TlsMode::Require,
                Some(("tls", "off")) => url.tls = TlsMode::Off,
                // A CA given means TLS is expected: never a plain-text fallback then.
                Some(("ca", path)) if !path.is_empty() => url.ca = Some(path.into()),
                _ => {
                    return Err(bad(format!(
                        "`{pair}` is not tls=prefer|require|off or ca=PATH"
                    )));
                }
            }
        }
        if url.ca.is_some() && url.tls == TlsMode::Prefer {
            url.tls = TlsMode::Require;
        }
        if url.ca.is_some() && url.tls == TlsMode::Off {
            return Err(bad("ca= and tls=off contradict each other".into()));
        }
        Ok(url)
    }

    /// `host:port`, as errors and plans name the FE.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ClusterUrl {
    /// The address without a password (there never is one) and without the CA path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "starrocks://{}@{}", self.user, self.address())
    }
}

/// A result set as text, read by column name (StarRocks' SHOW columns change between versions;
/// positions are never relied on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The cell of row `i` in column `name`; `None` for SQL NULL and for StarRocks' `\N`
    /// (its SHOW output writes unset values as those two characters).
    pub fn get(&self, i: usize, name: &str) -> Option<&str> {
        let c = self.column(name)?;
        match self.rows.get(i)?.get(c)?.as_deref() {
            None | Some("\\N") => None,
            Some(v) => Some(v),
        }
    }

    /// Like [`Rows::get`], but a missing column is an error naming it.
    pub fn need(&self, i: usize, name: &str, statement: &str) -> Result<Option<&str>> {
        if self.column(name).is_none() {
            return Err(FeError::Answer {
                statement: statement.to_string(),
                message: format!(
                    "it has no column {name} (columns: {})",
                    self.columns.join(", ")
                ),
            });
        }
        Ok(self.get(i, name))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One connection to a StarRocks FE.
pub struct Fe {
    url: ClusterUrl,
    conn: mysql_async::Conn,
    /// Whether the session is encrypted.
    pub tls: bool,
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one statement may take (SHOW SNAPSHOT lists an object store).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

impl Fe {
    /// Connects and logs in. With `tls=prefer`, TLS is used when the FE offers it (its
    /// certificate checked against `ca=` or the public roots); with `require`, a FE without TLS
    /// is refused.
    pub async fn connect(url: &ClusterUrl, password: &str) -> Result<Fe> {
        let address = url.address();
        let attempt = |tls: bool| {
            let mut opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname(url.host.clone())
                .tcp_port(url.port)
                .user(Some(url.user.clone()))
                .pass(Some(password.to_string()))
                .db_name(None::<String>)
                // StarRocks has no @@socket; with these three set, mysql_async sends no query
                // of its own after the handshake.
                .prefer_socket(false)
                .max_allowed_packet(Some(16 * 1024 * 1024))
                .wait_timeout(Some(28_800))
                .stmt_cache_size(0);
            if tls {
                let mut ssl = mysql_async::SslOpts::default();
                if let Some(ca) = &url.ca {
                    ssl = ssl.with_root_certs(vec![ca.clone().into()]);
                }
                opts = opts.ssl_opts(Some(ssl));
            }
            mysql_async::Conn::new(opts)
        };
        let connect = |tls: bool| async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, attempt(tls)).await {
                Ok(r) => r,
                Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()),
                    ),
                ))),
            }
        };
        let conn = match url.tls {
            TlsMode::Off => connect(false)
                .await
                .map_err(|e| connect_error(&address, e))?,
            TlsMode::Require | TlsMode::Prefer => match connect(true).await {
                Ok(c) => c,
                Err(e) if url.tls == TlsMode::Prefer && no_tls_offered(&e) => connect(false)
                    .await
                    .map_err(|e| connect_error(&address, e))?,
                Err(e) => return Err(connect_error(&address, e)),
            },
        };
        let tls = url.tls != TlsMode::Off && conn.opts().ssl_opts().is_some();
        Ok(Fe {
            url: url.clone(),
            conn,
            tls,
        })
    }

    pub fn url(&self) -> &ClusterUrl {
        &self.url
    }

    /// Runs one statement (COM_QUERY) and reads its rows as text.
    pub async fn query(&mut self, statement: &str) -> Result<Rows> {
        let run = self.conn.query_iter(statement);
        let mut result = match tokio::time::timeout(STATEMENT_TIMEOUT, run).await {
            Err(_) => {
                return Err(FeError::Io {
                    statement: statement.to_string(),
                    message: format!("no answer in {} s", STATEMENT_TIMEOUT.as_secs()),
                });
            }
            Ok(r) => r.map_err(|e| statement_error(statement, e))?,
        };
        let columns: Vec<String> = result
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let raw: Vec<mysql_async::Row> = result
            .collect()
            .await
            .map_err(|e| statement_error(statement, e))?;
        // Drain any further result sets (StarRocks sends one; a proxy might send more).
        result
            .drop_result()
            .await
            .map_err(|e| statement_error(statement, e))?;
        let mut rows = Vec::with_capacity(raw.len());
        for row in raw {
            let mut cells = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                cells.push(match row.as_ref(i) {
                    None | Some(mysql_async::Value::NULL) => None,
                    Some(mysql_async::Value::Bytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    Some(v) => Some(v.as_sql(true).trim_matches('\'').to_string()),
                });
            }
            rows.push(cells);
        }
        Ok(Rows { columns, rows })
    }

    /// Runs a statement that returns no rows.
    pub async fn execute(&mut self, statement: &str) -> Result<()> {
        self.query(statement).await.map(|_| ())
    }

    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

fn no_tls_offered(e: &mysql_async::Error) -> bool {
    matches!(
        e,
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
    )
}

fn connect_error(address: &str, e: mysql_async::Error) -> FeError {
    let message = match &e {
        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            "the FE does not offer TLS (tls=require); use tls=prefer or tls=off to connect \
             without it"
                .into()
        }
        other => other.to_string(),
    };
    FeError::Connect {
        address: address.to_string(),
        message,
    }
}

fn statement_error(statement: &str, e: mysql_async::Error) -> FeError {
    match e {
        mysql_async::Error::Server(s) => FeError::Refused {
            statement: statement.to_string(),
            code: s.code,
            state: s.state,
            message: s.message,
        },
        other => FeError::Io {
            statement: statement.to_string(),
            message: other.to_string(),
        },
    }
}

/// The FE password: `SRBACKUP_PASSWORD`, else asked on the terminal (echo off). Never from
/// the command line, where the process list and shell history would show it.
pub fn password() -> Result<String> {
    if let Ok(p) = std::env::var("SRBACKUP_PASSWORD") {
        return Ok(p);
    }
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let no_password = |why: String| FeError::Url {
        message: format!("no password for the StarRocks FE: {why}"),
        help: Some("set SRBACKUP_PASSWORD (empty for an account without a password)".into()),
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| no_password(format!("no terminal to ask on ({e})")))?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios calls on a descriptor this function owns, with a zeroed struct the call
    // fills; echo is restored before returning.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_termios = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_termios {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut out = &tty;
    let _ = out.write_all(b"StarRocks password: ");
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if have_termios {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    let _ = out.write_all(b"\n");
    read.map_err(|e| no_password(e.to_string()))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A name quoted for StarRocks (backquotes; a backquote inside doubled).
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal for StarRocks (single quotes; backslash and quote escaped).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Bytes from StarRocks' human-readable sizes (`1.234 GB`, `17.9 KiB`, `0B`, `123`): units of
/// 1024, with or without the `i`, with or without a space.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let shift = match unit
        .trim_end_matches("BYTES")
        .trim_end_matches('B')
        .trim_end_matches('I')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ClusterUrl::parse("starrocks://root@127.0.0.1:9030").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("root", "127.0.0.1", 9030)
        );
        assert_eq!(u.tls, TlsMode::Prefer);
        assert_eq!(u.to_string(), "starrocks://root@127.0.0.1:9030");
        let u = ClusterUrl::parse("starrocks://bk@fe.example:9031?tls=require&ca=/x.pem").unwrap();
        assert_eq!(
            (u.port, u.tls, u.ca.unwrap()),
            (9031, TlsMode::Require, "/x.pem".into())
        );
        assert_eq!(ClusterUrl::parse("starrocks://u@h").unwrap().port, 9030);
        // A CA means TLS: never a plain-text fallback.
        let u = ClusterUrl::parse("starrocks://u@h?ca=/c.pem").unwrap();
        assert_eq!(u.tls, TlsMode::Require);
        assert!(ClusterUrl::parse("starrocks://u@h?ca=/c.pem&tls=off").is_err());
        assert_eq!(
            ClusterUrl::parse("starrocks://u@[::1]:9").unwrap().host,
            "::1"
        );
        for bad in [
            "mysql://u@h",
            "starrocks://h:9030",
            "starrocks://u:secret@h:9030",
            "starrocks://u@h:0",
            "starrocks://u@h:99999",
            "starrocks://u@h;x:1",
            "starrocks://u@h:1?tls=maybe",
        ] {
            let e = ClusterUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("1.5 KiB"), Some(1536));
        assert_eq!(parse_size("1.234 GB"), Some(1_324_997_411));
        assert_eq!(parse_size("17.9KB"), Some(18_330));
        assert_eq!(parse_size("2 TB"), Some(2 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("1e999 GB"), None);
    }

    #[test]
    fn unset_cells() {
        let rows = Rows {
            columns: vec!["State".into(), "FinishedTime".into()],
            rows: vec![vec![Some("FINISHED".into()), Some("\\N".into())]],
        };
        assert_eq!(rows.get(0, "state"), Some("FINISHED"));
        assert_eq!(rows.get(0, "FinishedTime"), None);
        assert!(rows.need(0, "Nope", "SHOW BACKUP").is_err());
    }
}
