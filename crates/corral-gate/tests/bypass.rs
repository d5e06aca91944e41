//! The bypass corpus: hostile requests sent byte for byte over TCP, each with a valid key (so
//! authentication is not what stops them unless the trick is about authentication), each
//! expected to be refused with a 4xx and to reach nothing upstream.
//!
//! The corpus is a table: one [`Case`] per hostile request. A run checks every case, then
//! reports all the ones that failed at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use corral_testsupport::codec;

/// What a case must get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// Any 4xx status.
    Any4xx,
    /// A 4xx, or the connection closed without a response (for bytes that are not HTTP).
    RefusedOrClosed,
}

struct Case {
    group: &'static str,
    name: String,
    raw: Vec<u8>,
    expect: Expect,
}

/// Keys and addresses the requests are built with.
struct Ctx {
    host: String,
    /// `Bearer <user key>`.
    user: String,
    /// `Bearer <admin key>`.
    admin: String,
    /// `Bearer <key of a policy without tools or images>`.
    notools: String,
    admin_raw: String,
}

const CHAT: &str =
    r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#;
const SECRET_CHAT: &str =
    r#"{"model":"secret-model","messages":[{"role":"user","content":"hi"}],"stream":false}"#;
const CLOUD_CHAT: &str =
    r#"{"model":"gpt-oss:120b-cloud","messages":[{"role":"user","content":"hi"}],"stream":false}"#;
const PULL: &str = r#"{"model":"llama3.2","stream":false}"#;

impl Ctx {
    /// A request with Host, the user's key, the extra header lines, and a Content-Length body.
    fn req(&self, method: &str, target: &str, extra: &str, body: &[u8]) -> Vec<u8> {
        self.req_as(&self.user, method, target, extra, body)
    }

    fn req_as(&self, auth: &str, method: &str, target: &str, extra: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// A request whose head is given whole (after the request line); `body` is appended as is.
    fn head(&self, request_line: &str, head: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!("{request_line}\r\n{head}\r\n").into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn std_head(&self) -> String {
        format!(
            "Host: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
            self.host, self.user
        )
    }
}

fn case(group: &'static str, name: impl Into<String>, raw: Vec<u8>, expect: Expect) -> Case {
    Case {
        group,
        name: name.into(),
        raw,
        expect,
    }
}

fn path_tricks(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let mut v = Vec::new();
    // Tricks around an admin route: routing must refuse them as non-canonical or unknown.
    let admin_targets = [
        "/api/../api/pull",
        "//api/pull",
        "/api/pull/",
        "/api//pull",
        "/api/%70ull",
        "/api/pull%2f",
        "/api/pull%2F",
        "/api/%2e%2e/api/pull",
        "/api/chat/../pull",
        "/api/chat%2f..%2fpull",
        "/api/%2570ull",
        "/API/PULL",
        "/Api/Pull",
        "/api/pull;x",
        "/api/pull%00",
        "/api/pull%09",
        "/api/pull%20",
        "/api/pull.",
        "/api/pull%C0%AF",
        "/api/p%C3%BCll",
        "/api/pull%EF%BC%8F",
        "/./api/pull",
        "/api/./pull",
        "/%61pi/pull",
        "\\api\\pull",
        "/api\\pull",
        "/api/pull#x",
        "http://x/api/../api/pull",
    ];
    for t in admin_targets {
        v.push(case(
            "path",
            format!("POST {t}"),
            c.req("POST", t, "", PULL.as_bytes()),
            Any4xx,
        ));
    }
    // Refused by policy even with a query or in absolute form.
    v.push(case(
        "path",
        "POST /api/pull?x=1",
        c.req("POST", "/api/pull?x=1", "", PULL.as_bytes()),
        Any4xx,
    ));
    v.push(case(
        "path",
        "absolute-form http://x/api/pull",
        c.req("POST", "http://x/api/pull", "", PULL.as_bytes()),
        Any4xx,
    ));
    v.push(case(
        "path",
        "absolute-form aimed at the upstream",
        c.req(
            "POST",
            "http://127.0.0.1:11434/api/pull",
            "",
            PULL.as_bytes(),
        ),
        Any4xx,
    ));
    // Raw non-ASCII and control bytes in the target.
    let mut raw = c.req("POST", "/api/pXll", "", PULL.as_bytes());
    let at = raw.windows(4).position(|w| w == b"pXll").unwrap() + 1;
    raw.splice(at..=at, "\u{00fc}".bytes()).for_each(drop);
    v.push(case("path", "raw UTF-8 in target", raw, RefusedOrClosed));
    let long = format!("/api/pull{}", "/a".repeat(6000));
    v.push(case(
        "path",
        "overlong path",
        c.req("POST", &long, "", PULL.as_bytes()),
        RefusedOrClosed,
    ));
    let dots = format!("/api/{}pull", "./".repeat(200));
    v.push(case(
        "path",
        "many dot segments",
        c.req("POST", &dots, "", PULL.as_bytes()),
        Any4xx,
    ));

    // The same tricks on routes the user may call: only canonicalisation can stop these.
    let allowed_targets = [
        "/api/../api/chat",
        "//api/chat",
        "/api/chat/",
        "/api/%63hat",
        "/API/CHAT",
        "/./api/chat",
        "/api/chat;jsessionid=1",
        "/api/chat%00",
        "/api/chat%2f",
        "/v1/chat/completions/",
        "/v1//chat/completions",
        "/v1/chat/../chat/completions",
        "/v1/chat%2fcompletions",
    ];
    for t in allowed_targets {
        v.push(case(
            "path",
            format!("POST {t} (allowed route)"),
            c.req("POST", t, "", CHAT.as_bytes()),
            Any4xx,
        ));
    }
    for t in [
        "/api/tags/.",
        "/api/tags/",
        "/api/tags%2f",
        "/v1/models/..%2f..%2fapi%2fps",
        "/v1/models/%2e%2e",
        "/v1/models/../../api/ps",
        "/v1/models/a/b",
    ] {
        v.push(case(
            "path",
            format!("GET {t}"),
            c.req("GET", t, "", b""),
            Any4xx,
        ));
    }
    v
}

fn methods(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    vec![
        case(
            "method",
            "GET /api/pull",
            c.req("GET", "/api/pull", "", b""),
            Status(405),
        ),
        case(
            "method",
            "PUT /api/chat",
            c.req("PUT", "/api/chat", "", CHAT.as_bytes()),
            Status(405),
        ),
        case(
            "method",
            "PATCH /api/chat",
            c.req("PATCH", "/api/chat", "", CHAT.as_bytes()),
            Status(405),
        ),
        case(
            "method",
            "DELETE /api/tags",
            c.req("DELETE", "/api/tags", "", b""),
            Status(405),
        ),
        case(
            "method",
            "POST /api/tags",
            c.req("POST", "/api/tags", "", b"{}"),
            Status(405),
        ),
        case(
            "method",
            "GET /api/chat",
            c.req("GET", "/api/chat", "", CHAT.as_bytes()),
            Status(405),
        ),
        case(
            "method",
            "HEAD /api/chat",
            c.req("HEAD", "/api/chat", "", b""),
            Status(405),
        ),
        case(
            "method",
            "OPTIONS /api/chat",
            c.req("OPTIONS", "/api/chat", "", b""),
            Status(405),
        ),
        case(
            "method",
            "lower-case post /api/chat",
            c.req("post", "/api/chat", "", CHAT.as_bytes()),
            Any4xx,
        ),
        case(
            "method",
            "Mixed-case Post /api/chat",
            c.req("Post", "/api/chat", "", CHAT.as_bytes()),
            Any4xx,
        ),
        case("method", "TRACE /", c.req("TRACE", "/", "", b""), Any4xx),
        case(
            "method",
            "TRACE /api/chat",
            c.req("TRACE", "/api/chat", "", b""),
            Any4xx,
        ),
        case(
            "method",
            "PROPFIND /api/tags",
            c.req("PROPFIND", "/api/tags", "", b""),
            Any4xx,
        ),
        case(
            "method",
            "GET /api/delete",
            c.req("GET", "/api/delete", "", b""),
            Any4xx,
        ),
        case(
            "method",
            "CONNECT to the upstream",
            c.head(
                "CONNECT 127.0.0.1:11434 HTTP/1.1",
                &format!("Host: 127.0.0.1:11434\r\nAuthorization: {}\r\n", c.user),
                b"",
            ),
            RefusedOrClosed,
        ),
        case(
            "method",
            "OPTIONS *",
            c.head("OPTIONS * HTTP/1.1", &c.std_head(), b""),
            RefusedOrClosed,
        ),
    ]
}

fn header_tricks(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let pull = PULL.as_bytes();
    let basic_admin_user =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", c.admin_raw));
    vec![
        case("header", "X-HTTP-Method-Override on POST /api/pull", c.req("POST", "/api/pull", "X-HTTP-Method-Override: GET\r\n", pull), Status(403)),
        case("header", "X-HTTP-Method-Override on GET /api/pull", c.req("GET", "/api/pull", "X-HTTP-Method-Override: POST\r\n", b""), Status(405)),
        case("header", "X-Method-Override on DELETE /api/delete", c.req("DELETE", "/api/delete", "X-Method-Override: GET\r\n", pull), Status(403)),
        case("header", "X-Original-URL", c.req("POST", "/api/pull", "X-Original-URL: /api/chat\r\n", pull), Status(403)),
        case("header", "X-Rewrite-URL", c.req("POST", "/api/pull", "X-Rewrite-URL: /api/chat\r\n", pull), Status(403)),
        case("header", "X-Forwarded-Prefix and X-Forwarded-Uri", c.req("POST", "/api/pull", "X-Forwarded-Prefix: /api/chat\r\nX-Forwarded-Uri: /api/chat\r\n", pull), Status(403)),
        case("header", "duplicate Authorization (user, admin)", c.req("POST", "/api/pull", &format!("Authorization: {}\r\n", c.admin), pull), Any4xx),
        case("header", "duplicate Authorization (admin, user)", c.req_as(&c.admin, "POST", "/api/pull", &format!("Authorization: {}\r\n", c.user), pull), Any4xx),
        case("header", "admin key in Proxy-Authorization", c.req("POST", "/api/pull", &format!("Proxy-Authorization: {}\r\n", c.admin), pull), Status(403)),
        case("header", "admin key in X-Api-Key beside a user key: neither is chosen", c.req("POST", "/api/pull", &format!("X-Api-Key: {}\r\n", c.admin_raw), pull), Status(401)),
        case("header", "admin key as Basic user name", c.req_as(&format!("Basic {basic_admin_user}"), "POST", "/api/pull", "", pull), Status(401)),
        case("header", "Digest scheme carrying the admin key", c.req_as(&format!("Digest username=\"root\", response=\"{}\"", c.admin_raw), "POST", "/api/pull", "", pull), Status(401)),
        case("header", "admin key after junk in one header", c.req_as(&format!("Bearer x {}", c.admin_raw), "POST", "/api/pull", "", pull), Status(401)),
        case(
            "header",
            "admin key only in a chunked trailer",
            {
                let body = format!("{:x}\r\n{PULL}\r\n0\r\nAuthorization: {}\r\n\r\n", PULL.len(), c.admin);
                c.head(
                    "POST /api/pull HTTP/1.1",
                    &format!("Host: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: Authorization\r\nConnection: close\r\n", c.host),
                    body.as_bytes(),
                )
            },
            Status(401),
        ),
        case("header", "Host of the upstream", c.req("POST", "/api/pull", "", pull).replace_host("127.0.0.1:11434"), Status(403)),
        case("header", "Host with a path", c.req("POST", "/api/pull", "", pull).replace_host("x/api/chat"), Any4xx),
        case("header", "two Host headers", c.req("POST", "/api/pull", "Host: evil.example\r\n", pull), Any4xx),
        // On a route the user may call: only the Host check stops these (RFC 9112 §3.2).
        case("header", "HTTP/1.1 without Host on an allowed route", c.head("POST /api/chat HTTP/1.1", &format!("Authorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", c.user, CHAT.len()), CHAT.as_bytes()), Status(400)),
        case("header", "two Host headers on an allowed route", c.req("POST", "/api/chat", "Host: evil.example\r\n", CHAT.as_bytes()), Status(400)),
        case("header", "Host with user info on an allowed route", c.req("POST", "/api/chat", "", CHAT.as_bytes()).replace_host("admin@127.0.0.1"), Status(400)),
        case("header", "Host with a path on an allowed route", c.req("POST", "/api/chat", "", CHAT.as_bytes()).replace_host("x/api/pull"), Status(400)),
        case("header", "X-Forwarded-Host", c.req("POST", "/api/pull", "X-Forwarded-Host: localhost\r\nX-Forwarded-Proto: https\r\n", pull), Status(403)),
        case("header", "Expect: 100-continue on a refused route", c.req("POST", "/api/pull", "Expect: 100-continue\r\n", pull), Status(403)),
        case("header", "h2c upgrade on a refused route", c.req("POST", "/api/pull", "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", pull).replace_connection("Upgrade, HTTP2-Settings"), Any4xx),
        case("header", "websocket upgrade on a refused route", c.req("GET", "/api/pull", "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", b"").replace_connection("Upgrade"), Any4xx),
        case("header", "NUL in a header value", c.req("POST", "/api/chat", "X-A: a\0b\r\n", CHAT.as_bytes()), RefusedOrClosed),
        case("header", "header name with a space before the colon", c.req("POST", "/api/chat", "X-A : b\r\n", CHAT.as_bytes()), RefusedOrClosed),
        case("header", "200 header lines", c.req("POST", "/api/chat", &"X-Pad: 1\r\n".repeat(200), CHAT.as_bytes()), RefusedOrClosed),
        case("header", "a 100 KB header", c.req("POST", "/api/chat", &format!("X-Big: {}\r\n", "a".repeat(100_000)), CHAT.as_bytes()), RefusedOrClosed),
    ]
}

fn compressed(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let enc = |e: &str| format!("Content-Encoding: {e}\r\n");
    let secret = SECRET_CHAT.as_bytes();
    let bomb_prefix = br#"{"model":"llama3.2","messages":[{"role":"user","content":"x"}],"pad":""#;
    let mut truncated = codec::gzip(CHAT.as_bytes());
    truncated.truncate(truncated.len() / 2);
    vec![
        case(
            "encoding",
            "gzip naming an admin-only model",
            c.req("POST", "/api/chat", &enc("gzip"), &codec::gzip(secret)),
            Status(403),
        ),
        case(
            "encoding",
            "zstd naming an admin-only model (/v1)",
            c.req(
                "POST",
                "/v1/chat/completions",
                &enc("zstd"),
                &codec::zstd(secret),
            ),
            Status(403),
        ),
        case(
            "encoding",
            "zstd naming an admin-only model (/api/generate)",
            c.req(
                "POST",
                "/api/generate",
                &enc("zstd"),
                &codec::zstd(br#"{"model":"secret-model","prompt":"x"}"#),
            ),
            Status(403),
        ),
        case(
            "encoding",
            "gzip naming a cloud model",
            c.req(
                "POST",
                "/api/chat",
                &enc("gzip"),
                &codec::gzip(CLOUD_CHAT.as_bytes()),
            ),
            Status(403),
        ),
        case(
            "encoding",
            "zstd on /api/show (legacy name field)",
            c.req(
                "POST",
                "/api/show",
                &enc("zstd"),
                &codec::zstd(br#"{"name":"secret-model"}"#),
            ),
            Status(403),
        ),
        case(
            "encoding",
            "zstd on an admin route",
            c.req(
                "POST",
                "/api/pull",
                &enc("zstd"),
                &codec::zstd(PULL.as_bytes()),
            ),
            Status(403),
        ),
        case(
            "encoding",
            "upper-case GZIP",
            c.req("POST", "/api/chat", &enc("GZIP"), &codec::gzip(secret)),
            Any4xx,
        ),
        case(
            "encoding",
            "nested gzip, gzip",
            c.req(
                "POST",
                "/api/chat",
                &enc("gzip, gzip"),
                &codec::gzip(&codec::gzip(secret)),
            ),
            Any4xx,
        ),
        case(
            "encoding",
            "two Content-Encoding headers",
            c.req(
                "POST",
                "/api/chat",
                &format!("{}{}", enc("gzip"), enc("zstd")),
                &codec::zstd(&codec::gzip(secret)),
            ),
            Any4xx,
        ),
        case(
            "encoding",
            "gzip then identity",
            c.req(
                "POST",
                "/api/chat",
                &enc("gzip, identity"),
                &codec::gzip(secret),
            ),
            Any4xx,
        ),
        case(
            "encoding",
            "br",
            c.req("POST", "/api/chat", &enc("br"), secret),
            Status(415),
        ),
        case(
            "encoding",
            "deflate",
            c.req(
                "POST",
                "/api/chat",
                &enc("deflate"),
                &codec::deflate(secret),
            ),
            Status(415),
        ),
        case(
            "encoding",
            "bogus encoding",
            c.req("POST", "/api/chat", &enc("x-corral-bogus"), secret),
            Status(415),
        ),
        case(
            "encoding",
            "gzip label on a plain body",
            c.req("POST", "/api/chat", &enc("gzip"), CHAT.as_bytes()),
            Any4xx,
        ),
        case(
            "encoding",
            "truncated gzip",
            c.req("POST", "/api/chat", &enc("gzip"), &truncated),
            Any4xx,
        ),
        case(
            "encoding",
            "gzip bomb (100 MiB)",
            c.req(
                "POST",
                "/api/chat",
                &enc("gzip"),
                &codec::gzip_bomb(bomb_prefix, 100 << 20),
            ),
            Any4xx,
        ),
        case(
            "encoding",
            "zstd bomb (200 MiB)",
            c.req(
                "POST",
                "/v1/chat/completions",
                &enc("zstd"),
                &codec::zstd_bomb(bomb_prefix, 200 << 20),
            ),
            Any4xx,
        ),
    ]
}

fn oversized(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    // The test policy allows 64 KiB bodies for `user`.
    let big = format!(
        r#"{{"model":"llama3.2","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(100_000)
    );
    let chunked = {
        let mut b = String::new();
        for piece in big.as_bytes().chunks(8192) {
            b.push_str(&format!(
                "{:x}\r\n{}\r\n",
                piece.len(),
                std::str::from_utf8(piece).unwrap()
            ));
        }
        b.push_str("0\r\n\r\n");
        b
    };
    let mut v = vec![
        case(
            "size",
            "Content-Length over the limit, body never sent",
            c.head(
                "POST /api/chat HTTP/1.1",
                &format!("{}Content-Length: 10000000\r\n", c.std_head()),
                b"",
            ),
            Status(413),
        ),
        case(
            "size",
            "Content-Length body over the limit",
            c.req("POST", "/api/chat", "", big.as_bytes()),
            Status(413),
        ),
        case(
            "size",
            "chunked body over the limit",
            c.head(
                "POST /api/chat HTTP/1.1",
                &format!("{}Transfer-Encoding: chunked\r\n", c.std_head()),
                chunked.as_bytes(),
            ),
            Status(413),
        ),
        case(
            "size",
            "Content-Length overflowing u64",
            c.head(
                "POST /api/chat HTTP/1.1",
                &format!(
                    "{}Content-Length: 99999999999999999999999\r\n",
                    c.std_head()
                ),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "size",
            "negative Content-Length",
            c.head(
                "POST /api/chat HTTP/1.1",
                &format!("{}Content-Length: -1\r\n", c.std_head()),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
    ];
    // A huge body on a route the user may not call is refused without reading it all.
    v.push(case(
        "size",
        "large blob upload by a user",
        c.head(
            "POST /api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000 HTTP/1.1",
            &format!("{}Content-Length: 50000000\r\n", c.std_head()),
            b"",
        ),
        Any4xx,
    ));
    v
}

fn json_bodies(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_obj = format!(
        r#"{{"model":"llama3.2","x":{}1{}}}"#,
        r#"{"a":"#.repeat(3000),
        "}".repeat(3000)
    );
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(SECRET_CHAT.as_bytes());
    let tools = r#"[{"type":"function","function":{"name":"f","parameters":{}}}]"#;
    let img = r#"["iVBORw0KGgo="]"#;
    let bodies: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("plain text", b"hello".to_vec(), Status(400)),
        ("JSON array", format!("[{CHAT}]").into_bytes(), Status(400)),
        ("JSON string", br#""llama3.2""#.to_vec(), Status(400)),
        ("JSON null", b"null".to_vec(), Status(400)),
        ("JSON number", b"42".to_vec(), Status(400)),
        (
            "truncated object",
            br#"{"model":"llama3.2""#.to_vec(),
            Status(400),
        ),
        ("empty body", Vec::new(), Status(400)),
        (
            "two objects back to back",
            format!("{CHAT}{SECRET_CHAT}").into_bytes(),
            Status(400),
        ),
        (
            "object then garbage",
            format!("{CHAT} garbage").into_bytes(),
            Status(400),
        ),
        (
            "invalid UTF-8 in a string",
            b"{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"
                .to_vec(),
            Status(400),
        ),
        ("byte-order mark before JSON", bom, Any4xx),
        ("deeply nested arrays", deep.into_bytes(), Status(400)),
        ("deeply nested objects", deep_obj.into_bytes(), Any4xx),
        (
            "duplicate model key, denied last",
            br#"{"model":"llama3.2","model":"secret-model","messages":[]}"#.to_vec(),
            Any4xx,
        ),
        // Ollama decodes with Go's encoding/json, which matches keys case-insensitively
        // (and folds U+017F to s, U+212A to k): a key the gate does not read is one Ollama may.
        (
            "case-variant Model key",
            br#"{"model":"llama3.2","Model":"secret-model","messages":[]}"#.to_vec(),
            Any4xx,
        ),
        (
            "upper-case MODEL key only",
            br#"{"MODEL":"secret-model","messages":[]}"#.to_vec(),
            Any4xx,
        ),
        (
            "model name in another case",
            br#"{"model":"SECRET-MODEL","messages":[]}"#.to_vec(),
            Any4xx,
        ),
        (
            "model name with a trailing space",
            br#"{"model":"secret-model ","messages":[]}"#.to_vec(),
            Any4xx,
        ),
        (
            "model name with a NUL",
            br#"{"model":"secret-model\u0000","messages":[]}"#.to_vec(),
            Any4xx,
        ),
        (
            "fully qualified denied model",
            br#"{"model":"registry.ollama.ai/library/secret-model:latest","messages":[]}"#.to_vec(),
            Status(403),
        ),
        (
            "foreign registry model",
            br#"{"model":"198.51.100.7:8443/attacker/leak_model_0","messages":[]}"#.to_vec(),
            Status(403),
        ),
        (
            "model as a non-string",
            br#"{"model":["secret-model"],"messages":[]}"#.to_vec(),
            Any4xx,
        ),
        // Go leaves a string field as it is when a later duplicate is null: Ollama would run
        // the first model while a last-wins reading sees only `name`.
        (
            "duplicate model key, null last, allowed name",
            br#"{"model":"secret-model","model":null,"name":"llama3.2","messages":[]}"#.to_vec(),
            Status(400),
        ),
        (
            "duplicate cloud model key, null last",
            br#"{"model":"gpt-oss:120b-cloud","model":null,"name":"llama3.2","messages":[]}"#
                .to_vec(),
            Status(400),
        ),
        (
            "duplicate key spelled with an escape",
            br#"{"model":"secret-model","\u006dodel":null,"name":"llama3.2","messages":[]}"#
                .to_vec(),
            Status(400),
        ),
        (
            "duplicate clamp key inside options",
            br#"{"model":"llama3.2","options":{"num_ctx":1,"num_ctx":99999999},"messages":[]}"#
                .to_vec(),
            Status(400),
        ),
    ];
    let mut v: Vec<Case> = bodies
        .into_iter()
        .map(|(name, b, e)| case("json", name, c.req("POST", "/api/chat", "", &b), e))
        .collect();
    let no_tools = |name: &str, body: String| {
        case(
            "json",
            name.to_string(),
            c.req_as(&c.notools, "POST", "/api/chat", "", body.as_bytes()),
            Any4xx,
        )
    };
    v.push(no_tools(
        "tools for a no-tools policy",
        format!(r#"{{"model":"llama3.2","messages":[],"tools":{tools}}}"#),
    ));
    v.push(no_tools(
        "case-variant Tools key",
        format!(r#"{{"model":"llama3.2","messages":[],"Tools":{tools}}}"#),
    ));
    v.push(no_tools(
        "tools key with U+017F (Go folds to s)",
        format!("{{\"model\":\"llama3.2\",\"messages\":[],\"tool\u{017f}\":{tools}}}"),
    ));
    v.push(no_tools(
        "case-variant Images key in a message",
        format!(
            r#"{{"model":"llava","messages":[{{"role":"user","content":"x","Images":{img}}}]}}"#
        ),
    ));
    v.push(no_tools(
        "tool-call history without tool definitions",
        r#"{"model":"llama3.2","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},{"role":"tool","content":"x"}]}"#.to_string(),
    ));
    v.push(no_tools(
        "tool result role in another case",
        r#"{"model":"llama3.2","messages":[{"role":"TOOL","content":"x"}]}"#.to_string(),
    ));
    v.push(no_tools(
        "case-variant Tool_Calls key",
        r#"{"model":"llama3.2","messages":[{"role":"assistant","content":"","Tool_Calls":[{"function":{"name":"f","arguments":{}}}]}]}"#.to_string(),
    ));
    v.push(no_tools(
        "tool_calls key with U+017F (Go folds to s)",
        "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_call\u{017f}\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}}]}]}".to_string(),
    ));
    v.push(no_tools(
        "case-variant Role key naming a tool result",
        r#"{"model":"llama3.2","messages":[{"Role":"tool","content":"x"}]}"#.to_string(),
    ));
    for (name, path, body) in [
        (
            "/v1 tool message without tool definitions",
            "/v1/chat/completions",
            r#"{"model":"llama3.2","messages":[{"role":"tool","tool_call_id":"c","content":"x"}]}"#,
        ),
        (
            "/v1/responses function_call_output item",
            "/v1/responses",
            r#"{"model":"llama3.2","input":[{"type":"function_call_output","call_id":"c","output":"x"}]}"#,
        ),
        (
            "/v1/responses shorthand message of role tool",
            "/v1/responses",
            r#"{"model":"llama3.2","input":[{"role":"tool","content":"x"}]}"#,
        ),
        (
            "/v1/messages tool_result block",
            "/v1/messages",
            r#"{"model":"llama3.2","max_tokens":8,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"x"}]}]}"#,
        ),
        (
            "/v1/messages document block",
            "/v1/messages",
            r#"{"model":"llama3.2","max_tokens":8,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}"#,
        ),
        (
            "/v1/messages document block with a case-variant Type key",
            "/v1/messages",
            r#"{"model":"llama3.2","max_tokens":8,"messages":[{"role":"user","content":[{"Type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}"#,
        ),
        (
            "/v1/messages image in a system block",
            "/v1/messages",
            r#"{"model":"llama3.2","max_tokens":8,"system":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}],"messages":[]}"#,
        ),
        (
            "/v1/responses input_file part",
            "/v1/responses",
            r#"{"model":"llama3.2","input":[{"role":"user","content":[{"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0="}]}]}"#,
        ),
        (
            "/v1/responses input_image part with an upper-case TYPE key",
            "/v1/responses",
            r#"{"model":"llama3.2","input":[{"role":"user","content":[{"TYPE":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}]}"#,
        ),
        (
            "/v1/responses unknown input item type",
            "/v1/responses",
            r#"{"model":"llama3.2","input":[{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}"#,
        ),
        // Ollama's ResponsesHistoryMiddleware puts the stored turns of the named response in
        // front of `input`: images and tool calls this body does not show.
        (
            "/v1/responses previous_response_id",
            "/v1/responses",
            r#"{"model":"llama3.2","previous_response_id":"resp_0b6f6d0e","input":"describe the image again"}"#,
        ),
        (
            "/v1/responses case-variant Previous_Response_Id key",
            "/v1/responses",
            r#"{"model":"llama3.2","Previous_Response_Id":"resp_0b6f6d0e","input":"go on"}"#,
        ),
        (
            "/v1 file content part",
            "/v1/chat/completions",
            r#"{"model":"llama3.2","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0="}}]}]}"#,
        ),
        (
            "/v1 content part without a type",
            "/v1/chat/completions",
            r#"{"model":"llama3.2","messages":[{"role":"user","content":[{"image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#,
        ),
        (
            "/v1/messages tool_use block with a case-variant Type key",
            "/v1/messages",
            r#"{"model":"llama3.2","max_tokens":8,"messages":[{"role":"assistant","content":[{"Type":"tool_use","id":"t","name":"f","input":{}}]}]}"#,
        ),
    ] {
        v.push(case(
            "json",
            name,
            c.req_as(&c.notools, "POST", path, "", body.as_bytes()),
            Any4xx,
        ));
    }
    v.push(case(
        "json",
        "tools via /v1 tool_choice with functions",
        c.req_as(&c.notools, "POST", "/v1/chat/completions", "", br#"{"model":"llama3.2","messages":[],"functions":[{"name":"f"}],"function_call":"auto"}"#),
        Any4xx,
    ));
    v
}

fn smuggling(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let inner = format!(
        "POST /api/pull HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{PULL}",
        c.host,
        c.admin,
        PULL.len()
    );
    let h = format!(
        "Host: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\n",
        c.host, c.user
    );
    let chat_line = "POST /api/chat HTTP/1.1";
    let cl_te_body = format!("0\r\n\r\n{inner}");
    let te_cl_body = format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    vec![
        case(
            "smuggling",
            "CL.TE: Content-Length then chunked",
            c.head(
                chat_line,
                &format!(
                    "{h}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                    cl_te_body.len()
                ),
                cl_te_body.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "TE.CL: chunked then Content-Length",
            c.head(
                chat_line,
                &format!("{h}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
                te_cl_body.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "two different Content-Lengths",
            c.head(
                chat_line,
                &format!("{h}Content-Length: {}\r\nContent-Length: 2\r\n", CHAT.len()),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "Content-Length list with different values",
            c.head(
                chat_line,
                &format!("{h}Content-Length: {}, 2\r\n", CHAT.len()),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "Transfer-Encoding: chunked, identity",
            c.head(
                chat_line,
                &format!("{h}Transfer-Encoding: chunked, identity\r\n"),
                b"0\r\n\r\n",
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "Transfer-Encoding: gzip, chunked (a gzip body past the JSON check)",
            c.head(
                chat_line,
                &format!("{h}Transfer-Encoding: gzip, chunked\r\n"),
                &{
                    let gz = codec::gzip(SECRET_CHAT.as_bytes());
                    let mut b = format!("{:x}\r\n", gz.len()).into_bytes();
                    b.extend_from_slice(&gz);
                    b.extend_from_slice(b"\r\n0\r\n\r\n");
                    b
                },
            ),
            Status(400),
        ),
        case(
            "smuggling",
            "Transfer-Encoding: xchunked",
            c.head(
                chat_line,
                &format!(
                    "{h}Transfer-Encoding: xchunked\r\nContent-Length: {}\r\n",
                    CHAT.len()
                ),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "two Transfer-Encoding headers",
            c.head(
                chat_line,
                &format!("{h}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"),
                te_cl_body.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "space before the colon of Transfer-Encoding",
            c.head(
                chat_line,
                &format!(
                    "{h}Transfer-Encoding : chunked\r\nContent-Length: {}\r\n",
                    CHAT.len()
                ),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "chunk size that is not hex",
            c.head(
                chat_line,
                &format!("{h}Transfer-Encoding: chunked\r\n"),
                format!("zz\r\n{CHAT}\r\n0\r\n\r\n").as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "obs-fold in Transfer-Encoding",
            c.head(
                chat_line,
                &format!(
                    "{h}Transfer-Encoding:\r\n chunked\r\nContent-Length: {}\r\n",
                    CHAT.len()
                ),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "obs-fold in Authorization",
            c.head(
                chat_line,
                &format!(
                    "Host: {}\r\nAuthorization: Bearer\r\n {}\r\nContent-Length: {}\r\n",
                    c.host,
                    c.admin_raw,
                    PULL.len()
                ),
                PULL.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "bare LF line endings with CL and TE",
            {
                let mut r = format!("POST /api/chat HTTP/1.1\nHost: {}\nAuthorization: {}\nContent-Length: {}\nTransfer-Encoding: chunked\n\n", c.host, c.user, cl_te_body.len()).into_bytes();
                r.extend_from_slice(cl_te_body.as_bytes());
                r
            },
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "bare LF hiding Transfer-Encoding in a value",
            c.head(
                chat_line,
                &format!(
                    "{h}X-A: a\nTransfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                    cl_te_body.len()
                ),
                cl_te_body.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "bare CR in a header value",
            c.head(
                chat_line,
                &format!(
                    "{h}X-A: a\rTransfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                    CHAT.len()
                ),
                CHAT.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "HTTP/1.0 with Transfer-Encoding",
            c.head(
                "POST /api/chat HTTP/1.0",
                &format!("{h}Transfer-Encoding: chunked\r\n"),
                te_cl_body.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "HTTP/0.9 style request line",
            b"GET /api/pull\r\n\r\n".to_vec(),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "two spaces in the request line",
            c.head(
                "POST  /api/pull HTTP/1.1",
                &format!("{h}Content-Length: {}\r\n", PULL.len()),
                PULL.as_bytes(),
            ),
            RefusedOrClosed,
        ),
        case(
            "smuggling",
            "HTTP/1.1 version spelled oddly",
            c.head(
                "POST /api/pull HTTP/1.10",
                &format!("{h}Content-Length: {}\r\n", PULL.len()),
                PULL.as_bytes(),
            ),
            RefusedOrClosed,
        ),
    ]
}

fn admin_routes_for_user(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let blob_target = format!("/api/blobs/{digest}");
    vec![
        case(
            "admin",
            "POST /api/pull",
            c.req("POST", "/api/pull", "", PULL.as_bytes()),
            Status(403),
        ),
        case(
            "admin",
            "POST /api/pull from a foreign registry",
            c.req(
                "POST",
                "/api/pull",
                "",
                br#"{"model":"198.51.100.7:8443/attacker/leak_model_0","insecure":true}"#,
            ),
            Status(403),
        ),
        case(
            "admin",
            "POST /api/push",
            c.req("POST", "/api/push", "", br#"{"model":"llama3.2"}"#),
            Status(403),
        ),
        case(
            "admin",
            "POST /api/create",
            c.req(
                "POST",
                "/api/create",
                "",
                br#"{"model":"x","from":"llama3.2"}"#,
            ),
            Status(403),
        ),
        case(
            "admin",
            "POST /api/copy",
            c.req(
                "POST",
                "/api/copy",
                "",
                br#"{"source":"llama3.2","destination":"llama3.2-copy"}"#,
            ),
            Status(403),
        ),
        case(
            "admin",
            "DELETE /api/delete",
            c.req("DELETE", "/api/delete", "", br#"{"model":"llama3.2"}"#),
            Status(403),
        ),
        case(
            "admin",
            "HEAD /api/blobs/{digest}",
            c.req("HEAD", &blob_target, "", b""),
            Status(403),
        ),
        case(
            "admin",
            "POST /api/blobs/{digest}",
            c.req("POST", &blob_target, "", b"GGUF\x03\x00\x00\x00"),
            Status(403),
        ),
        case(
            "admin",
            "POST /api/blobs/ traversal digest",
            c.req("POST", "/api/blobs/sha256:../../../../etc/passwd", "", b"x"),
            Any4xx,
        ),
        case(
            "account",
            "POST /api/me",
            c.req("POST", "/api/me", "", b"{}"),
            Status(403),
        ),
        case(
            "account",
            "POST /api/signout",
            c.req("POST", "/api/signout", "", b"{}"),
            Status(403),
        ),
        case(
            "account",
            "DELETE /api/user/keys/{key}",
            c.req("DELETE", "/api/user/keys/ssh-ed25519", "", b""),
            Status(403),
        ),
        case(
            "account",
            "POST /api/experimental/web_search",
            c.req(
                "POST",
                "/api/experimental/web_search",
                "",
                br#"{"query":"x"}"#,
            ),
            Status(403),
        ),
        case(
            "account",
            "POST /api/experimental/web_fetch",
            c.req(
                "POST",
                "/api/experimental/web_fetch",
                "",
                br#"{"url":"http://169.254.169.254/"}"#,
            ),
            Status(403),
        ),
        case(
            "account",
            "GET /api/experimental/model-recommendations",
            c.req("GET", "/api/experimental/model-recommendations", "", b""),
            Status(403),
        ),
        case(
            "ops",
            "GET /api/ps",
            c.req("GET", "/api/ps", "", b""),
            Status(403),
        ),
    ]
}

trait RawEdit {
    fn replace_host(self, host: &str) -> Vec<u8>;
    fn replace_connection(self, value: &str) -> Vec<u8>;
}

impl RawEdit for Vec<u8> {
    fn replace_host(self, host: &str) -> Vec<u8> {
        replace_header(self, "Host", host)
    }
    fn replace_connection(self, value: &str) -> Vec<u8> {
        replace_header(self, "Connection", value)
    }
}

/// Replaces the first header line `name: ...` of a raw request.
fn replace_header(raw: Vec<u8>, name: &str, value: &str) -> Vec<u8> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
    let mut done = false;
    let lines: Vec<String> = head
        .split("\r\n")
        .map(|l| {
            if !done
                && l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            {
                done = true;
                format!("{name}: {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&raw[head_end..]);
    out
}

fn corpus(c: &Ctx) -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(path_tricks(c));
    all.extend(methods(c));
    all.extend(header_tricks(c));
    all.extend(compressed(c));
    all.extend(oversized(c));
    all.extend(json_bodies(c));
    all.extend(smuggling(c));
    all.extend(admin_routes_for_user(c));
    all
}

fn check(expect: Expect, r: &RawResponse) -> Result<(), String> {
    if r.timed_out && r.status.is_none() {
        return Err("no answer within the time limit (the gate hung)".into());
    }
    match (expect, r.status) {
        (Expect::Status(want), Some(got)) if want == got => Ok(()),
        (Expect::Any4xx | Expect::RefusedOrClosed, Some(s)) if (400..500).contains(&s) => Ok(()),
        (Expect::RefusedOrClosed, None) if r.closed_without_response => Ok(()),
        (want, got) => Err(format!(
            "expected {want:?}, got {got:?} {:?}: {}",
            r.status_line,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(200)
                .collect::<String>()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_corpus_is_refused_and_reaches_nothing() {
    let h = Harness::with_policies().await;
    let c = Ctx {
        host: h.addr.to_string(),
        user: h.bearer("alice"),
        admin: h.bearer("root"),
        notools: h.bearer("nora"),
        admin_raw: h.key("root").to_string(),
    };
    // The gate forwards an ordinary request, so "nothing recorded" below means refused.
    let ok = raw_http(h.addr, &c.req("POST", "/api/chat", "", CHAT.as_bytes()))
        .await
        .unwrap();
    assert_eq!(ok.status, Some(200), "control request: {ok:?}");
    assert_eq!(h.forwarded().len(), 1);
    h.mock.clear();

    let cases = corpus(&c);
    assert!(cases.len() >= 70, "corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut seen = 0usize;
    for case in &cases {
        let r = raw_http_timeout(h.addr, &case.raw, Duration::from_secs(5))
            .await
            .unwrap();
        let mut problems = Vec::new();
        if let Err(e) = check(case.expect, &r) {
            problems.push(e);
        }
        let fwd = h.forwarded();
        if fwd.len() > seen {
            let leaked: Vec<String> = fwd[seen..]
                .iter()
                .map(|q| format!("{} {}", q.method, q.target))
                .collect();
            problems.push(format!("reached upstream: {leaked:?}"));
            seen = fwd.len();
        }
        if !problems.is_empty() {
            failures.push(format!(
                "[{}] {}: {}",
                case.group,
                case.name,
                problems.join("; ")
            ));
        }
    }
    // Still healthy afterwards.
    let ok = raw_http(h.addr, &c.req("POST", "/api/chat", "", CHAT.as_bytes()))
        .await
        .unwrap();
    assert_eq!(
        ok.status,
        Some(200),
        "control request after the corpus: {ok:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests were not handled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_is_large_and_names_are_unique() {
    let c = Ctx {
        host: "127.0.0.1:1".into(),
        user: "Bearer u".into(),
        admin: "Bearer a".into(),
        notools: "Bearer n".into(),
        admin_raw: "a".into(),
    };
    let cases = corpus(&c);
    assert!(cases.len() >= 70, "{}", cases.len());
    let mut names: Vec<(&str, &str)> = cases.iter().map(|c| (c.group, c.name.as_str())).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate case names");
}

/// Pipelined requests on one connection are each routed, authenticated and decided on their
/// own: an allowed request first does not carry a forbidden or unauthenticated one behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_each_checked() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let h = Harness::with_policies().await;
    let host = h.addr.to_string();
    let user = h.bearer("alice");
    let one = |auth: &str, target: &str, body: &str, last: bool| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if last { "Connection: close\r\n" } else { "" }
        )
    };
    let raw = [
        one(&user, "/api/chat", CHAT, false),
        one(&user, "/api/pull", PULL, false),
        one("Bearer crl_nobody_x", "/api/chat", CHAT, false),
        one(&user, "/api/chat", SECRET_CHAT, true),
    ]
    .concat();
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the gate answers all four and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "403", "401", "403"], "{text}");
    let fwd: Vec<String> = h
        .forwarded()
        .iter()
        .filter(|q| !is_gate_own_request(q))
        .map(|q| format!("{} {}", q.method, q.target))
        .collect();
    assert_eq!(fwd, ["POST /api/chat"]);
}
