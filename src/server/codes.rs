//! Error numbers opensrv-mysql cannot send: its `ErrorKind` is MySQL 5.7's list (up to 1885),
//! and StarRocks answers a refused privilege with 5203. The connection sends a stand-in
//! (same SQLSTATE) and this writer, under the library's packet writer, replaces the two code
//! bytes of ERR packets carrying a stand-in with the real number.
//!
//! It follows the packet stream byte by byte (4-byte header, then the payload), so it does not
//! matter how the library splits its writes: an ERR packet's first code byte waits for the
//! second.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use opensrv_mysql::ErrorKind;
use tokio::io::AsyncWrite;

/// Stand-ins and what they become.
const MAP: &[(ErrorKind, u16)] = &[
    // StarRocks' ERR_ACCESS_DENIED ("Access denied; you need (at least one of) …"), 42000.
    (ErrorKind::ER_SPECIFIC_ACCESS_DENIED_ERROR, 5203),
    // A failed login: MySQL's and StarRocks' "Access denied for user", 28000 (the library
    // sends 1698, ER_ACCESS_DENIED_NO_PASSWORD_ERROR, whatever the reason).
    (ErrorKind::ER_ACCESS_DENIED_NO_PASSWORD_ERROR, 1045),
];

/// StarRocks' error for a refused privilege, sent as [`ErrorKind::ER_SPECIFIC_ACCESS_DENIED_ERROR`].
pub const ACCESS_DENIED: ErrorKind = ErrorKind::ER_SPECIFIC_ACCESS_DENIED_ERROR;

fn replacement(lo: u8, hi: u8) -> Option<u16> {
    let code = u16::from_le_bytes([lo, hi]);
    MAP.iter()
        .find(|(k, _)| *k as u16 == code)
        .map(|(_, to)| *to)
}

/// Where in the packet stream the next byte is.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    header: [u8; 4],
    /// Header bytes seen of the current packet (0..=4).
    header_seen: usize,
    /// Payload bytes left, and the offset of the next one.
    left: usize,
    offset: usize,
    is_err: bool,
    /// The payload continues the previous packet's (that one was exactly 0xFFFFFF bytes long):
    /// its first byte is data, never an ERR marker.
    continuation: bool,
    /// The current packet is 0xFFFFFF bytes long: the next one continues it.
    full: bool,
}

/// Bytes kept before they go out: transformed ones, and at most one undecided byte (an ERR
/// packet's first code byte, until the second arrives).
const HIGH_WATER: usize = 64 * 1024;

/// An `AsyncWrite` that rewrites stand-in error numbers (see the module). It accepts what it
/// is given, keeps at most [`HIGH_WATER`] bytes before pushing back, and writes everything
/// out on flush.
pub struct ErrorCodes<W> {
    inner: W,
    at: Position,
    /// An ERR packet's first code byte, waiting for the second.
    held: Option<u8>,
    out: Vec<u8>,
}

impl<W> ErrorCodes<W> {
    pub fn new(inner: W) -> Self {
        ErrorCodes {
            inner,
            at: Position::default(),
            held: None,
            out: Vec::new(),
        }
    }

    /// The writer underneath, once everything kept has been written out (after a flush).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Moves `buf` through the packet tracker into `out`.
    fn feed(&mut self, buf: &[u8]) {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            let at = &mut self.at;
            // Past where an ERR code could be, a payload passes through whole: one copy of the
            // run, not a step per byte (result sets are most of what goes out).
            if at.header_seen == 4 && (at.offset >= 3 || (at.offset >= 1 && !at.is_err)) {
                let n = at.left.min(buf.len() - i);
                self.out.extend_from_slice(&buf[i..i + n]);
                at.offset += n;
                at.left -= n;
                i += n;
                if at.left == 0 {
                    at.header_seen = 0;
                }
                continue;
            }
            i += 1;
            if at.header_seen < 4 {
                at.header[at.header_seen] = b;
                at.header_seen += 1;
                if at.header_seen == 4 {
                    at.left =
                        u32::from_le_bytes([at.header[0], at.header[1], at.header[2], 0]) as usize;
                    at.offset = 0;
                    at.is_err = false;
                    at.continuation = at.full;
                    at.full = at.left == 0xFF_FFFF;
                    if at.left == 0 {
                        at.header_seen = 0;
                    }
                }
                self.out.push(b);
                continue;
            }
            match at.offset {
                0 => {
                    at.is_err = b == 0xFF && !at.continuation;
                    self.out.push(b);
                }
                1 if at.is_err => self.held = Some(b),
                2 if at.is_err => {
                    let lo = self.held.take().unwrap_or(0);
                    let code = replacement(lo, b).map(u16::to_le_bytes).unwrap_or([lo, b]);
                    self.out.extend(code);
                }
                _ => self.out.push(b),
            }
            at.offset += 1;
            at.left -= 1;
            if at.left == 0 {
                at.header_seen = 0;
                // An ERR packet cut after its first code byte: that byte goes out in place.
                if let Some(h) = self.held.take() {
                    self.out.push(h);
                }
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> ErrorCodes<W> {
    /// Writes out what is kept; `Pending` until all of it is gone (or `keep` bytes remain).
    fn drain(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<io::Result<()>> {
        while self.out.len() > keep {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.out.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn write_from(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.drain(cx, HIGH_WATER) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        self.feed(buf);
        // Send what it can now; the rest goes with the next write or the flush.
        if let Poll::Ready(Err(e)) = self.drain(cx, 0) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ErrorCodes<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_from(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.drain(cx, HIGH_WATER) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        let mut n = 0;
        for b in bufs {
            this.feed(b);
            n += b.len();
        }
        if let Poll::Ready(Err(e)) = this.drain(cx, 0) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(b) = this.held.take() {
            // A flush inside an ERR packet's code (never done by the library): as it was.
            this.out.push(b);
        }
        match this.drain(cx, 0) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain(cx, 0) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn err_packet(seq: u8, code: u16, msg: &str) -> Vec<u8> {
        let mut payload = vec![0xFF];
        payload.extend(code.to_le_bytes());
        payload.extend(b"#42000");
        payload.extend(msg.as_bytes());
        let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(seq);
        p.extend(payload);
        p
    }

    fn ok_packet(seq: u8) -> Vec<u8> {
        vec![7, 0, 0, seq, 0, 0, 0, 2, 0, 0, 0]
    }

    /// Written in pieces of every size, the stream comes out the same, stand-ins replaced.
    #[tokio::test]
    async fn rewrites_stand_ins_however_the_writes_are_split() {
        let mut input = ok_packet(1);
        // An OK packet whose bytes at offsets 1-2 look like the stand-in stays as it is.
        input.extend([3, 0, 0, 2, 0x00, 0xCB, 0x04]);
        input.extend(err_packet(3, 1227, "Access denied; you need"));
        input.extend(err_packet(4, 1064, "syntax"));
        input.extend(err_packet(5, 1698, "Authenticate failed"));
        let mut expected = ok_packet(1);
        expected.extend([3, 0, 0, 2, 0x00, 0xCB, 0x04]);
        expected.extend(err_packet(3, 5203, "Access denied; you need"));
        expected.extend(err_packet(4, 1064, "syntax"));
        expected.extend(err_packet(5, 1045, "Authenticate failed"));
        // A 16 MiB packet's continuation that starts like an ERR packet is data.
        let mut big = vec![0xFF, 0xFF, 0xFF, 6];
        big.extend(std::iter::repeat_n(7u8, 0xFF_FFFF));
        big.extend([4, 0, 0, 7, 0xFF, 0xCB, 0x04, 0x23]);
        let mut w = ErrorCodes::new(Vec::new());
        w.write_all(&big).await.unwrap();
        w.flush().await.unwrap();
        assert!(w.inner == big, "a continuation was rewritten");
        for chunk in 1..=input.len() {
            let mut w = ErrorCodes::new(Vec::new());
            for piece in input.chunks(chunk) {
                w.write_all(piece).await.unwrap();
            }
            w.flush().await.unwrap();
            assert_eq!(w.inner, expected, "pieces of {chunk}");
        }
    }
}
