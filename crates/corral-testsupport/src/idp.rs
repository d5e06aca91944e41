//! A mock OIDC identity provider: a discovery document and a key set of ES256 keys made at
//! start, each fetch counted; it can be taken down (503 to everything) and its keys rotated.
//! Its realm is `/realms/ml` (Keycloak's layout): issuer `http(s)://ADDR/realms/ml`, key set at
//! `/realms/ml/protocol/openid-connect/certs`.
//!
//! With minting on ([`MockIdp::start_minting`], the `mock-idp` binary), `GET /mint?user=U&groups=A,B`
//! answers a token for audience `corral` signed with the first published key, valid five
//! minutes, whose user is in `preferred_username` (and `sub`) and whose groups are in both
//! `groups` and `realm_access.roles`: for end-to-end tests in other languages.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// An ES256 signing key with its `kid`.
pub struct SigningKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl SigningKey {
    /// A fresh P-256 key.
    pub fn generate(kid: &str) -> io::Result<SigningKey> {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(other)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
            .map_err(other)?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            pair,
        })
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        let (x, y) = p
            .get(1..)
            .unwrap_or_default()
            .split_at(p.len().saturating_sub(1) / 2);
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
               "x": b64(x), "y": b64(y)})
    }

    /// A compact JWS of `claims`, its header naming this key.
    pub fn sign(&self, claims: &Value) -> io::Result<String> {
        self.sign_as(&self.kid, claims)
    }

    /// As [`SigningKey::sign`], the header naming `kid` instead.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> io::Result<String> {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .map_err(other)?;
        Ok(format!("{signed}.{}", b64(sig.as_ref())))
    }
}

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

struct State {
    issuer: String,
    up: AtomicBool,
    jwks: Mutex<Value>,
    minting: Option<SigningKey>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

/// A running mock provider; stops when dropped.
pub struct MockIdp {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl MockIdp {
    /// A provider on `127.0.0.1:0` publishing the public halves of `keys`, up or down, over
    /// plain HTTP.
    pub async fn start(keys: &[&SigningKey], up: bool) -> io::Result<MockIdp> {
        MockIdp::start_with(keys, up, None, None, "127.0.0.1:0".parse().map_err(other)?).await
    }

    /// A provider over HTTP on `listen` that mints tokens signed with `key` (`GET /mint`).
    pub async fn start_minting(key: SigningKey, listen: SocketAddr) -> io::Result<MockIdp> {
        let jwk = [&key].map(|k| k.jwk());
        let idp = MockIdp::start_with(&[], true, None, Some(key), listen).await?;
        *idp.state
            .jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = json!({ "keys": jwk });
        Ok(idp)
    }

    /// A provider over HTTPS with a self-signed certificate for 127.0.0.1, returned as PEM.
    pub async fn start_tls(keys: &[&SigningKey]) -> io::Result<(MockIdp, String)> {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).map_err(other)?;
        let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der())
            .map_err(other)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listen = "127.0.0.1:0".parse().map_err(other)?;
        let idp = MockIdp::start_with(keys, true, Some(acceptor), None, listen).await?;
        Ok((idp, ck.cert.pem()))
    }

    async fn start_with(
        keys: &[&SigningKey],
        up: bool,
        tls: Option<TlsAcceptor>,
        minting: Option<SigningKey>,
        listen: SocketAddr,
    ) -> io::Result<MockIdp> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(State {
            issuer: format!("{scheme}://{addr}/realms/ml"),
            up: AtomicBool::new(up),
            jwks: Mutex::new(Value::Null),
            minting,
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
        });
        let idp_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&idp_state);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, std::convert::Infallible>(answer(&state, &req)) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        let idp = MockIdp { addr, state, task };
        idp.publish(keys);
        Ok(idp)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http(s)://ADDR/realms/ml`.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Publishes the public halves of `keys` from now on.
    pub fn publish(&self, keys: &[&SigningKey]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
        *self
            .state
            .jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = json!({ "keys": jwks });
    }

    /// Publishes `jwks` as written from now on (keys a test has crafted).
    pub fn publish_raw(&self, jwks: Value) {
        *self
            .state
            .jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = jwks;
    }

    /// Down, it answers 503 to everything.
    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    pub fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        resp
    };
    let json = "application/json";
    if !state.up.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, json, "{}".into());
    }
    match req.uri().path() {
        "/realms/ml/.well-known/openid-configuration" => {
            state.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let doc = json!({
                "issuer": state.issuer,
                "jwks_uri": format!("{}/protocol/openid-connect/certs", state.issuer),
                "id_token_signing_alg_values_supported": ["ES256"],
            });
            reply(StatusCode::OK, json, doc.to_string())
        }
        "/realms/ml/protocol/openid-connect/certs" => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
            let jwks = state
                .jwks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .to_string();
            reply(StatusCode::OK, json, jwks)
        }
        "/mint" => match mint(state, req.uri().query().unwrap_or("")) {
            Some(token) => reply(StatusCode::OK, "text/plain", token),
            None => reply(StatusCode::NOT_FOUND, json, "{}".into()),
        },
        _ => reply(StatusCode::NOT_FOUND, json, "{}".into()),
    }
}

/// A token for `user=U&groups=A,B` (the user percent-decoded, so a test can mint a name with
/// any character; groups are plain).
fn mint(state: &State, query: &str) -> Option<String> {
    let key = state.minting.as_ref()?;
    let mut user = String::new();
    let mut groups: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("user", u)) => {
                user = percent_encoding::percent_decode_str(u)
                    .decode_utf8()
                    .ok()?
                    .into_owned()
            }
            Some(("groups", g)) => groups = g.split(',').filter(|g| !g.is_empty()).collect(),
            _ => {}
        }
    }
    let now = unix_now();
    let claims = json!({
        "iss": state.issuer,
        "aud": ["account", "corral"],
        "sub": format!("id-{user}"),
        "preferred_username": user,
        "groups": groups,
        "realm_access": {"roles": groups},
        "exp": now + 300,
        "iat": now,
    });
    key.sign(&claims).ok()
}
