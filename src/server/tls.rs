//! TLS for `srbackup serve` (rustls), and the connection driver that switches to it.
//!
//! opensrv-mysql greets the client and reads its first packet (`init_before_ssl`). A client
//! that asks for TLS gets it here, not from the library: the library would read the decrypted
//! stream without `server::framing`, whose one-packet-per-read rule keeps its reader off its
//! use-after-free path. So the framing before the switch turns raw (the TLS handshake is not
//! made of packets; nothing it buffered is lost), and the decrypted stream gets a framing of
//! its own before the library reads the login packet inside TLS.
//!
//! StarRocks' `ssl_force_secure_transport`: a plain-text connection from another host is
//! refused with error 5205 before it logs in.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use opensrv_mysql::{AsyncMysqlIntermediary, AsyncMysqlShim, IntermediaryOptions};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::codes::ErrorCodes;
use super::framing::OnePacketPerRead;

/// A socket's read half as the framing holds it (boxed: before TLS the socket, after it the
/// decrypted stream).
pub type Input = Box<dyn AsyncRead + Send + Unpin>;

/// The server's TLS configuration from PEM files (certificate chain, private key).
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate {} is not PEM: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    Ok(Arc::new(config))
}

/// StarRocks' ERR_SECURE_TRANSPORT_REQUIRED, written as the library would write an ERR packet.
fn secure_transport_required(seq: u8) -> Vec<u8> {
    let message =
        b"Connections using insecure transport are prohibited while --require_secure_transport=ON.";
    let mut payload = vec![0xFF];
    payload.extend(5205u16.to_le_bytes());
    payload.extend(b"#HY000");
    payload.extend(message);
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend(payload);
    p
}

/// `ssl_force_secure_transport`: plain text only from this machine.
fn refuses_plain_text(policy: &Policy, peer: IpAddr) -> bool {
    policy.force_secure_transport && !peer.is_loopback()
}

/// How a connection is to be served.
pub struct Policy {
    pub tls: Option<Arc<ServerConfig>>,
    pub force_secure_transport: bool,
}

/// Serves one connection: greeting, TLS if asked for (or required), then the library's loop.
/// `on_tls` is told when the connection has switched (before the login is checked).
pub async fn serve<S, W>(
    mut shim: S,
    read: Input,
    write: W,
    peer: IpAddr,
    policy: &Policy,
    on_tls: impl FnOnce(),
) -> io::Result<()>
where
    W: AsyncWrite + Send + Unpin + 'static,
    S: AsyncMysqlShim<ErrorCodes<W>, Error = io::Error>
        + AsyncMysqlShim<
            ErrorCodes<
                tokio::io::WriteHalf<
                    tokio_rustls::server::TlsStream<tokio::io::Join<OnePacketPerRead<Input>, W>>,
                >,
            >,
            Error = io::Error,
        > + Send
        + Sync,
{
    let mut out = ErrorCodes::new(write);
    let (is_ssl, (handshake, seq, caps, mut reader)) = AsyncMysqlIntermediary::init_before_ssl(
        &mut shim,
        OnePacketPerRead::new(read),
        &mut out,
        &policy.tls,
    )
    .await?;
    let options = IntermediaryOptions::default();
    if !is_ssl {
        if refuses_plain_text(policy, peer) {
            let mut raw = out.into_inner();
            raw.write_all(&secure_transport_required(seq.wrapping_add(1)))
                .await?;
            raw.flush().await?;
            return Ok(());
        }
        return opensrv_mysql::plain_run_with_options(
            shim,
            out,
            options,
            (handshake, seq, caps, reader),
        )
        .await;
    }
    let Some(config) = policy.tls.clone() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a TLS request to a server without TLS",
        ));
    };
    // Nothing of the TLS handshake is in the library's reader: the framing handed it the
    // request packet alone. What the framing itself holds goes first, as it came.
    let empty: Input = Box::new(tokio::io::empty());
    let mut socket = std::mem::replace(&mut reader.r, OnePacketPerRead::new(empty));
    socket.set_raw();
    let stream = TlsAcceptor::from(config)
        .accept(tokio::io::join(socket, out.into_inner()))
        .await?;
    on_tls();
    let (decrypted, encrypted_write) = tokio::io::split(stream);
    reader.r = OnePacketPerRead::new(Box::new(decrypted));
    opensrv_mysql::plain_run_with_options(
        shim,
        ErrorCodes::new(encrypted_write),
        options,
        (handshake, seq, caps, reader),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_from_other_hosts_is_refused_with_5205() {
        let forced = Policy {
            tls: None,
            force_secure_transport: true,
        };
        let open = Policy {
            tls: None,
            force_secure_transport: false,
        };
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let local6: IpAddr = "::1".parse().unwrap();
        assert!(refuses_plain_text(&forced, remote));
        assert!(!refuses_plain_text(&forced, local));
        assert!(!refuses_plain_text(&forced, local6));
        assert!(!refuses_plain_text(&open, remote));
        let p = secure_transport_required(2);
        let len = u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize;
        assert_eq!(len, p.len() - 4);
        assert_eq!(p[3], 2);
        assert_eq!(p[4], 0xFF);
        assert_eq!(u16::from_le_bytes([p[5], p[6]]), 5205);
        assert_eq!(&p[7..13], b"#HY000");
    }
}
