//! The MySQL protocol front on arbitrary client bytes: opensrv-mysql (the protocol library)
//! fed through `server::framing`, exactly as `srbackup serve` feeds it, answering every query
//! with a row that echoes it. Under AddressSanitizer nothing may crash or touch freed memory.
//!
//! `SRBACKUP_FUZZ_UNFRAMED=1` feeds the library the bytes directly instead: the use-after-free
//! of opensrv-mysql 0.7.0 that the framing exists to avoid (any input holding a packet and
//! more in one read) is then reported at once.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ColumnType, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter,
};
use srbackup::server::framing::OnePacketPerRead;
use tokio::io::AsyncWrite;

#[derive(Default)]
struct Echo {
    columns: Vec<Column>,
}

#[async_trait::async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Echo {
    type Error = io::Error;

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.reply(1, &[], &[]).await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results.completed(OkResponse::default()).await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        self.columns = vec![Column {
            table: String::new(),
            column: "query".into(),
            coltype: ColumnType::MYSQL_TYPE_VAR_STRING,
            colflags: ColumnFlags::empty(),
        }];
        let columns: &'a [Column] = &self.columns;
        let mut rows = results.start(columns).await?;
        rows.write_col(query)?;
        rows.end_row().await?;
        rows.finish().await
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let unframed = std::env::var_os("SRBACKUP_FUZZ_UNFRAMED").is_some();
    runtime.block_on(async {
        let output = tokio::io::sink();
        // Errors are expected (most inputs are not a valid session); crashes are not.
        let _ = if unframed {
            AsyncMysqlIntermediary::run_on(Echo::default(), data, output).await
        } else {
            AsyncMysqlIntermediary::run_on(Echo::default(), OnePacketPerRead::new(data), output)
                .await
        };
    });
});
