//! Fetching the identity provider's documents: one `GET` per connection (HTTP/1.1, over TLS
//! for `https`), with a connect timeout, an overall deadline and a size cap. Redirects are not
//! followed: the configured addresses are the ones trusted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corral_policy::config::IdpUrl;
use http::header::{ACCEPT, HOST, USER_AGENT};
use http::Request;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::GateError;

/// Largest discovery document or key set read.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Time allowed to connect to one of the provider's addresses.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one whole fetch: resolution, connection, TLS, request and body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a document could not be fetched. Texts are for the operator's log.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS with {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("answered HTTP {0} (expected 200; redirects are not followed)")]
    Status(u16),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("no answer within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
}

/// What connects to the provider: TLS with the configured trust roots.
#[derive(Clone)]
pub struct IdpClient {
    tls: TlsConnector,
}

impl IdpClient {
    /// A client trusting the CAs of `ca_file` (PEM), or the built-in web roots without one.
    pub fn new(ca_file: Option<&Path>) -> Result<IdpClient, GateError> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(path) => read_roots(path, &mut roots)?,
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| GateError::Oidc(format!("TLS client configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(IdpClient {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The body of a `200` answer to `GET url`.
    pub async fn get(&self, url: &IdpUrl) -> Result<Bytes, FetchError> {
        tokio::time::timeout(FETCH_TIMEOUT, self.get_now(url))
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn get_now(&self, url: &IdpUrl) -> Result<Bytes, FetchError> {
        let tcp = connect(url).await?;
        if url.tls() {
            let name =
                ServerName::try_from(url.host().to_owned()).map_err(|e| FetchError::Tls {
                    host: url.host().to_owned(),
                    reason: e.to_string(),
                })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| FetchError::Tls {
                    host: url.host().to_owned(),
                    reason: e.to_string(),
                })?;
            exchange(tls, url).await
        } else {
            exchange(tcp, url).await
        }
    }
}

fn read_roots(path: &Path, roots: &mut RootCertStore) -> Result<(), GateError> {
    let fail =
        |reason: String| GateError::Oidc(format!("oidc.ca_file {}: {reason}", path.display()));
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| fail(format!("unreadable PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("unusable certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(fail("holds no PEM certificate".to_owned()));
    }
    Ok(())
}

/// A connection to the first of the host's addresses that answers.
async fn connect(url: &IdpUrl) -> Result<TcpStream, FetchError> {
    let addrs: Vec<_> = tokio::net::lookup_host((url.host(), url.port()))
        .await
        .map_err(|_| FetchError::Resolve(url.host().to_owned()))?
        .collect();
    let mut last = FetchError::Resolve(url.host().to_owned());
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => {
                last = FetchError::Connect {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                }
            }
            Err(_) => {
                last = FetchError::Connect {
                    addr: addr.to_string(),
                    reason: "timed out".to_owned(),
                }
            }
        }
    }
    Err(last)
}

async fn exchange<S>(stream: S, url: &IdpUrl) -> Result<Bytes, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| FetchError::Http(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let req = Request::get(url.path_and_query())
        .header(HOST, url.authority())
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, concat!("corral/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let answer = async {
        let resp = sender.send_request(req).await.map_err(http)?;
        if resp.status() != http::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        Limited::new(resp.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Http(e.to_string())
                }
            })
    };
    // The connection is driven alongside the exchange and dropped with it. A connection that
    // ends in good order has handed its last bytes to the body: the answer completes from them.
    let mut answer = std::pin::pin!(answer);
    tokio::select! {
        biased;
        got = &mut answer => got,
        ended = conn => match ended {
            Ok(()) => answer.await,
            Err(e) => Err(FetchError::Http(e.to_string())),
        },
    }
}
