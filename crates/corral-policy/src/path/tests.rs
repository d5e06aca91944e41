use super::*;

#[test]
fn canonical_paths_pass_unchanged() {
    for p in [
        "/",
        "/api/chat",
        "/api/generate",
        "/v1/chat/completions",
        "/v1/models/llama3.2:latest",
        "/v1/models/llama3.2%3Alatest",
        "/v1/models/llama3.2%3alatest",
        "/api/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "/api/experimental/model-recommendations",
        "/api/user/keys/AAAA-bb_cc=",
    ] {
        assert_eq!(check(p), Ok(p), "{p}");
    }
}

#[test]
fn hostile_targets_are_refused_with_the_right_reason() {
    use PathError::*;
    let cases: &[(&str, PathError)] = &[
        ("", Empty),
        ("api/chat", NotOriginForm),
        ("*", NotOriginForm),
        ("http://evil/api/chat", NotOriginForm),
        ("https://127.0.0.1:11434/api/pull", NotOriginForm),
        ("//api/chat", EmptySegment),
        ("/api//chat", EmptySegment),
        ("/api/chat/", TrailingSlash),
        ("/api/", TrailingSlash),
        ("/v1/chat/completions/", TrailingSlash),
        ("/api/./chat", DotSegment),
        ("/api/../api/pull", DotSegment),
        ("/api/chat/..", DotSegment),
        ("/..", DotSegment),
        ("/.", DotSegment),
        ("/api/.../chat", DotSegment),
        ("/api/%2e%2e/pull", PercentEncoding),
        ("/api/%2E%2E/pull", PercentEncoding),
        ("/api%2fpull", PercentEncoding),
        ("/api%2Fpull", PercentEncoding),
        ("/api/%5cpull", PercentEncoding),
        ("/api/chat%00", PercentEncoding),
        ("/api/ch%61t", PercentEncoding),
        ("/api/chat%", PercentEncoding),
        ("/api/chat%3", PercentEncoding),
        ("/api/%252e%252e/pull", PercentEncoding),
        ("/api/%u002e", PercentEncoding),
        ("/api\\pull", Backslash),
        ("/api/..\\pull", Backslash),
        ("/api/chat\0", ControlChar),
        ("/api/chat\r\nHost: evil", ControlChar),
        ("/api/chat\t", ControlChar),
        ("/api/chat\x7f", ControlChar),
        ("/api/chät", NonAscii),
        ("/api/chat\u{2215}pull", NonAscii),
        ("/api/\u{ff0e}\u{ff0e}/pull", NonAscii),
        ("/api/chat?x=1", Query),
        ("/api/chat?", Query),
        ("/api/tags?name=llama", Query),
        ("/v1/models?limit=1", Query),
        ("/api/chat#frag", Fragment),
        ("/api/chat;jsessionid=1", MatrixParam),
        ("/api;/pull", MatrixParam),
        ("/api/chat ", BadChar),
        ("/api/ chat", BadChar),
        ("/api/chat!", BadChar),
        ("/api/chat$", BadChar),
        ("/api/chat,generate", BadChar),
        ("/api/chat+", BadChar),
        ("/api/chat'", BadChar),
        ("/api/chat\"", BadChar),
        ("/api/chat<", BadChar),
        ("/api/(chat)", BadChar),
        ("/api/chat&", BadChar),
        ("/api/*", BadChar),
        ("/api/chat|pull", BadChar),
    ];
    assert!(cases.len() >= 40);
    for (target, want) in cases {
        assert_eq!(check(target), Err(*want), "{target:?}");
    }
}

#[test]
fn length_limit_is_exact() {
    let ok = format!("/{}", "a".repeat(MAX_TARGET_LEN - 1));
    assert_eq!(check(&ok), Ok(ok.as_str()));
    let long = format!("/{}", "a".repeat(MAX_TARGET_LEN));
    assert_eq!(check(&long), Err(PathError::TooLong));
}

#[test]
fn error_messages_never_echo_the_target() {
    let secret = "/api/crl_SECRETKEY?token=crl_abc";
    let e = check(secret).unwrap_err();
    assert!(!e.to_string().contains("crl_"));
}

#[test]
fn decode_param_decodes_only_the_colon() {
    assert_eq!(decode_param("llama3.2%3Alatest"), "llama3.2:latest");
    assert_eq!(decode_param("llama3.2%3alatest"), "llama3.2:latest");
    assert_eq!(decode_param("a:b"), "a:b");
}
