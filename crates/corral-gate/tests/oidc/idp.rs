//! A mock identity provider on 127.0.0.1:0: a discovery document and a key set of ES256 keys
//! made at test time, each fetch counted; it can be taken down (503) and its keys rotated.
//! Also signs tokens with its keys.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

pub struct SigningKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl SigningKey {
    pub fn generate(kid: &str) -> SigningKey {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
        SigningKey {
            kid: kid.to_owned(),
            pair,
        }
    }

    pub fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
               "x": b64(&p[1..33]), "y": b64(&p[33..])})
    }

    /// A compact JWS of `claims` with header `{"alg":"ES256","kid":...}`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// As [`SigningKey::sign`], naming another `kid`.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", b64(sig.as_ref()))
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct State {
    issuer: String,
    up: AtomicBool,
    jwks: Mutex<Value>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

pub struct MockIdp {
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl MockIdp {
    /// A provider publishing the public halves of `keys`, up or down, over plain HTTP.
    pub async fn start(keys: &[&SigningKey], up: bool) -> MockIdp {
        MockIdp::start_with(keys, up, None).await
    }

    /// A provider over HTTPS with a self-signed certificate for 127.0.0.1, returned as PEM.
    pub async fn start_tls(keys: &[&SigningKey]) -> (MockIdp, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let idp = MockIdp::start_with(keys, true, Some(acceptor)).await;
        (idp, ck.cert.pem())
    }

    async fn start_with(
        keys: &[&SigningKey],
        up: bool,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> MockIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(State {
            issuer: format!("{scheme}://{addr}/realms/ml"),
            up: AtomicBool::new(up),
            jwks: Mutex::new(Value::Null),
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
        let idp = MockIdp { state, task };
        idp.publish(keys);
        idp
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Publishes the public halves of `keys` from now on.
    pub fn publish(&self, keys: &[&SigningKey]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
        *self.state.jwks.lock().unwrap() = json!({ "keys": jwks });
    }

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
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if !state.up.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "{}".into());
    }
    match req.uri().path() {
        "/realms/ml/.well-known/openid-configuration" => {
            state.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let doc = json!({
                "issuer": state.issuer,
                "jwks_uri": format!("{}/protocol/openid-connect/certs", state.issuer),
                "id_token_signing_alg_values_supported": ["ES256"],
            });
            reply(StatusCode::OK, doc.to_string())
        }
        "/realms/ml/protocol/openid-connect/certs" => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
            reply(StatusCode::OK, state.jwks.lock().unwrap().to_string())
        }
        _ => reply(StatusCode::NOT_FOUND, "{}".into()),
    }
}
