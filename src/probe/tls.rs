//! TLS phase: handshake with SNI and certificate verification for the public
//! FQDN, against the system roots plus an optional extra CA file.

use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::model::TlsOutcome;
use crate::nodefiles::{CaFileError, load_pem_certs};
use crate::observation::TlsObservation;

/// Trust anchors and crypto provider, built once and shared by every handshake.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
    /// How many roots came from the system store.
    pub system_roots: usize,
    /// How many roots came from the extra CA file / extra roots.
    pub extra_roots: usize,
}

/// Setting up TLS failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error("no trusted root certificates: the system store is empty and no extra CA is configured")]
    NoRoots,
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
}

impl TlsSetup {
    /// System roots plus the certificates of `extra_ca_file` and `extra`.
    pub fn new(
        extra_ca_file: Option<&Path>,
        extra: &[CertificateDer<'static>],
        include_system: bool,
    ) -> Result<TlsSetup, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let mut system_roots = 0;
        if include_system {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            system_roots = added;
        }
        let mut extra_certs: Vec<CertificateDer<'static>> = extra.to_vec();
        if let Some(path) = extra_ca_file {
            extra_certs.extend(load_pem_certs(path)?);
        }
        let (extra_roots, _) = roots.add_parsable_certificates(extra_certs);
        if roots.is_empty() {
            return Err(TlsSetupError::NoRoots);
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
        Ok(TlsSetup {
            provider,
            verifier,
            system_roots,
            extra_roots,
        })
    }

    fn client_config(&self, recorder: Arc<RecordingVerifier>) -> ClientConfig {
        let mut cfg = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(recorder)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        cfg.resumption = rustls::client::Resumption::disabled();
        cfg
    }
}

/// Delegates to webpki and keeps the end-entity certificate, so that its
/// expiry can be reported even when verification fails.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.clone().into_owned());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TCP stream that counts the bytes read from it: how much the server said
/// during the handshake, also when the handshake fails.
#[derive(Debug)]
pub struct Counted {
    inner: TcpStream,
    received: Arc<AtomicU64>,
}

impl Counted {
    fn new(inner: TcpStream) -> Counted {
        Counted {
            inner,
            received: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = (buf.filled().len() - before) as u64;
            self.received.fetch_add(n, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The TLS stream the HTTP phase speaks over.
pub type Stream = TlsStream<Counted>;

/// Performs the handshake; the stream is returned on success.
pub async fn handshake(
    setup: &TlsSetup,
    tcp: TcpStream,
    fqdn: &str,
    limit: Duration,
) -> (TlsObservation, Option<Stream>) {
    let start = Instant::now();
    let ends = tcp.local_addr().ok().zip(tcp.peer_addr().ok());
    let tcp = Counted::new(tcp);
    let received = tcp.received.clone();
    let recorder = Arc::new(RecordingVerifier {
        inner: setup.verifier.clone(),
        seen: Mutex::new(None),
    });
    let connector = TlsConnector::from(Arc::new(setup.client_config(recorder.clone())));
    let server_name = match ServerName::try_from(fqdn.to_string()) {
        Ok(n) => n,
        Err(e) => {
            let obs = TlsObservation {
                outcome: TlsOutcome::Failed,
                duration: start.elapsed(),
                detail: Some(format!("invalid server name {fqdn:?}: {e}")),
                cert_not_after: None,
                version: None,
                received: 0,
                unacked: None,
            };
            return (obs, None);
        }
    };
    let connecting = connector.connect(server_name, tcp);
    tokio::pin!(connecting);
    let result = timeout(limit, &mut connecting).await;
    let duration = start.elapsed();
    let received = received.load(Ordering::Relaxed);
    // Read while the socket is still open.
    let unacked = match (&result, ends) {
        (Err(_), Some((local, remote))) => {
            tokio::task::spawn_blocking(move || crate::nodefiles::unacknowledged(local, remote))
                .await
                .ok()
                .flatten()
        }
        _ => None,
    };
    let cert_not_after = recorder
        .seen
        .lock()
        .ok()
        .and_then(|s| s.as_ref().and_then(|der| super::cert::not_after(der.as_ref())));
    let mut obs = TlsObservation {
        outcome: TlsOutcome::Ok,
        duration,
        detail: None,
        cert_not_after,
        version: None,
        received,
        unacked,
    };
    match result {
        Err(_) => {
            obs.outcome = TlsOutcome::Timeout;
            obs.detail = Some(format!(
                "handshake not finished within {}",
                humantime::format_duration(limit)
            ));
            (obs, None)
        }
        Ok(Err(e)) => {
            let (outcome, detail) = classify(&e);
            obs.outcome = outcome;
            obs.detail = Some(detail);
            (obs, None)
        }
        Ok(Ok(stream)) => {
            obs.version = stream
                .get_ref()
                .1
                .protocol_version()
                .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."));
            (obs, Some(stream))
        }
    }
}

fn classify(e: &std::io::Error) -> (TlsOutcome, String) {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return (TlsOutcome::Failed, e.to_string());
    };
    let outcome = match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsOutcome::NameMismatch
            }
            CertificateError::UnknownIssuer => TlsOutcome::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsOutcome::Expired,
            _ => TlsOutcome::Failed,
        },
        _ => TlsOutcome::Failed,
    };
    (outcome, humanize(&tls.to_string()))
}

/// rustls prints some errors as debug text (`invalid peer certificate:
/// Other(OtherError(CaUsedAsEndEntity))`, `UnknownIssuer`): drop the wrapper
/// names and spell identifiers as words (`ca used as end entity`).
fn humanize(text: &str) -> String {
    let is_ident = |w: &str| {
        let mut chars = w.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| c.is_ascii_alphanumeric())
            && w.chars().any(|c| c.is_ascii_lowercase())
            && w.chars().skip(1).any(|c| c.is_ascii_uppercase())
    };
    let words = |w: &str| {
        let mut out = String::new();
        for (i, c) in w.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    };
    // Tokens are runs of identifier characters; everything else is kept,
    // except the parentheses that belonged to a dropped wrapper.
    let mut out = String::with_capacity(text.len());
    let mut open_wrappers = 0usize;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_alphanumeric() {
            let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
            let (token, after) = rest.split_at(end);
            let wrapper = token.starts_with(|c: char| c.is_ascii_uppercase()) && after.starts_with('(');
            if wrapper {
                open_wrappers += 1;
                rest = &after[1..];
                continue;
            }
            out.push_str(&if is_ident(token) {
                words(token)
            } else {
                token.to_string()
            });
            rest = after;
        } else {
            if c == ')' && open_wrappers > 0 {
                open_wrappers -= 1;
            } else {
                out.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::humanize;

    #[test]
    fn debug_prints_become_words() {
        assert_eq!(
            humanize("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"),
            "invalid peer certificate: ca used as end entity"
        );
        assert_eq!(
            humanize("invalid peer certificate: UnknownIssuer"),
            "invalid peer certificate: unknown issuer"
        );
        // Ordinary text, versions and names stay as they are.
        let plain = "certificate not valid for name \"a.example\"; certificate is only valid for TLS 1.3 (x)";
        assert_eq!(humanize(plain), plain);
    }
}
