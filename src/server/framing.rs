//! Hands the MySQL protocol library its input one packet at a time.
//!
//! opensrv-mysql 0.7.0's packet reader parses a packet straight out of its read buffer and,
//! when that buffer holds bytes past the packet, replaces the buffer while the returned packet
//! still points into the old one (databendlabs/opensrv#66; fixed on its main branch, not in a
//! release). A client that sends two packets back to back, or one packet and a byte more,
//! reaches that path. [`OnePacketPerRead`] sits between the socket and the library and never
//! returns bytes from two packets in one read, so the reader always parses a packet that ends
//! exactly at the end of its buffer and never takes the path that frees it.
//!
//! It also bounds what a client may make the server buffer: a packet longer than
//! [`MAX_PACKET`] (a statement split over several 16 MiB packets) is refused. And it refuses a
//! packet numbered 255: the library answers with number + 1 in a `u8`, which overflows (a
//! panic in a debug build; found by the `wire` fuzz target). No well-behaved client gets there:
//! every command starts again at 0.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// The largest packet payload accepted: one physical packet (2^24 - 2 bytes). The protocol
/// marks a longer payload with a packet of exactly 2^24 - 1 bytes, which is refused.
pub const MAX_PACKET: usize = 0xff_ff_fe;

const HEADER: usize = 4;
const BUFFER: usize = 64 * 1024;

/// An [`AsyncRead`] that ends every read at a packet boundary.
pub struct OnePacketPerRead<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Bytes of `buf` not yet handed on: `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of the current packet (header included) not yet handed on; 0 between packets.
    left_in_packet: usize,
    eof: bool,
    /// After a TLS request: what is buffered, then the socket as it comes (the TLS handshake
    /// is not made of packets; the decrypted stream gets a framing of its own).
    raw: bool,
}

impl<R> OnePacketPerRead<R> {
    pub fn new(inner: R) -> Self {
        OnePacketPerRead {
            inner,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            left_in_packet: 0,
            eof: false,
            raw: false,
        }
    }

    /// From now on, hands on bytes as they come (see `raw`).
    pub fn set_raw(&mut self) {
        self.raw = true;
    }
}

impl<R: AsyncRead + Unpin> OnePacketPerRead<R> {
    /// Reads more from the socket into the free end of the buffer; false at end of input.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut free = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut free))?;
        let n = free.filled().len();
        self.end += n;
        Poll::Ready(Ok(n > 0))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for OnePacketPerRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.raw {
            if this.end > this.start {
                let n = (this.end - this.start).min(out.remaining());
                out.put_slice(&this.buf[this.start..this.start + n]);
                this.start += n;
                return Poll::Ready(Ok(()));
            }
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        loop {
            let available = this.end - this.start;
            if this.left_in_packet == 0 && available >= HEADER {
                let h = &this.buf[this.start..this.start + HEADER];
                let payload = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                if payload > MAX_PACKET {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a statement longer than 16 MiB was refused",
                    )));
                }
                if h[3] == u8::MAX {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a packet out of sequence (number 255) was refused",
                    )));
                }
                this.left_in_packet = HEADER + payload;
            }
            // Hand on what belongs to the current packet; a partial header only at the end of
            // the input (it cannot complete a packet, so the library reports it as cut short).
            let deliverable = if this.left_in_packet > 0 {
                available.min(this.left_in_packet)
            } else if this.eof {
                available
            } else {
                0
            };
            if deliverable > 0 {
                let n = deliverable.min(out.remaining());
                out.put_slice(&this.buf[this.start..this.start + n]);
                this.start += n;
                this.left_in_packet = this.left_in_packet.saturating_sub(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if !ready!(this.poll_fill(cx))? {
                this.eof = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        p.extend_from_slice(payload);
        p
    }

    /// Where the packets of `input` end, from their headers.
    fn boundaries(input: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + HEADER <= input.len() {
            let h = &input[at..at + HEADER];
            at += HEADER + (usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16);
            out.push(at);
        }
        out
    }

    /// Reads all of `input` through the framer: every byte comes through unchanged and no
    /// read spans the end of a packet.
    async fn assert_one_packet_per_read(input: &[u8]) {
        let ends = boundaries(input);
        let mut reader = OnePacketPerRead::new(input);
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            let before = seen.len();
            seen.extend_from_slice(&buf[..n]);
            assert!(
                !ends.iter().any(|e| *e > before && *e < seen.len()),
                "a read of {n} bytes from {before} crossed a packet boundary"
            );
        }
        assert_eq!(seen, input);
    }

    #[tokio::test]
    async fn reads_never_cross_a_packet_boundary() {
        let mut input = Vec::new();
        for (i, n) in [0usize, 1, 5, 70_000, 3, 100_000].iter().enumerate() {
            input.extend(packet(i as u8, &vec![i as u8; *n]));
        }
        assert_one_packet_per_read(&input).await;
    }

    /// What the fuzzer found against the unframed library (a handshake and commands in one
    /// read, which made opensrv-mysql 0.7.0 read freed memory) comes through one packet per read.
    #[tokio::test]
    async fn the_fuzzers_use_after_free_input_is_split_into_packets() {
        let input = include_bytes!("../../tests/fuzz-regressions/wire-two-packets-in-one-read.bin");
        assert!(boundaries(input).len() > 1);
        assert_one_packet_per_read(input).await;
    }

    #[tokio::test]
    async fn oversized_and_cut_short_input() {
        let huge = [0xff, 0xff, 0xff, 0];
        let mut reader = OnePacketPerRead::new(&huge[..]);
        let err = reader.read(&mut [0u8; 16]).await.unwrap_err();
        assert!(err.to_string().contains("16 MiB"), "{err}");

        // What the fuzzer found: a command numbered 255.
        let input = include_bytes!("../../tests/fuzz-regressions/wire-sequence-255.bin");
        let mut reader = OnePacketPerRead::new(&input[..]);
        let mut sink = Vec::new();
        let err = reader.read_to_end(&mut sink).await.unwrap_err();
        assert!(err.to_string().contains("out of sequence"), "{err}");

        // Two bytes of a header, then the end: handed on, then end of input.
        let mut reader = OnePacketPerRead::new(&[1u8, 0][..]);
        let mut buf = [0u8; 16];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
    }
}
