use super::*;

const DIGEST: &str =
    "/api/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn class_of(method: &str, path: &str) -> EndpointClass {
    route(method, path)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .route
        .class
}

#[test]
fn every_reference_route_has_its_class() {
    use EndpointClass::*;
    let table: &[(&str, &str, EndpointClass)] = &[
        ("POST", "/api/generate", Inference),
        ("POST", "/api/chat", Inference),
        ("POST", "/api/embed", Inference),
        ("POST", "/api/embeddings", Inference),
        ("POST", "/v1/chat/completions", Inference),
        ("POST", "/v1/completions", Inference),
        ("POST", "/v1/embeddings", Inference),
        ("POST", "/v1/responses", Inference),
        ("POST", "/v1/messages", Inference),
        ("POST", "/v1/audio/transcriptions", Inference),
        ("GET", "/", Discovery),
        ("HEAD", "/", Discovery),
        ("GET", "/api/version", Discovery),
        ("GET", "/api/tags", Discovery),
        ("POST", "/api/show", Discovery),
        ("GET", "/v1/models", Discovery),
        ("GET", "/v1/models/llama3.2", Discovery),
        ("GET", "/api/status", Discovery),
        ("GET", "/api/ps", Ops),
        ("POST", "/api/pull", Admin),
        ("POST", "/api/push", Admin),
        ("POST", "/api/create", Admin),
        ("POST", DIGEST, Admin),
        ("HEAD", DIGEST, Admin),
        ("POST", "/api/copy", Admin),
        ("DELETE", "/api/delete", Admin),
        ("POST", "/api/me", Account),
        ("POST", "/api/signout", Account),
        ("DELETE", "/api/user/keys/abc123", Account),
        ("POST", "/api/experimental/web_search", Account),
        ("POST", "/api/experimental/web_fetch", Account),
        ("GET", "/api/experimental/model-recommendations", Account),
    ];
    for (method, path, class) in table {
        assert_eq!(class_of(method, path), *class, "{method} {path}");
    }
    // Every table entry is reachable, so nothing in ROUTES is untested.
    assert_eq!(ROUTES.len(), table.len() - 2);
}

#[test]
fn body_kinds_and_listings() {
    assert_eq!(
        route("POST", "/api/chat").unwrap().route.body,
        BodyKind::Json
    );
    assert_eq!(
        route("POST", "/v1/audio/transcriptions")
            .unwrap()
            .route
            .body,
        BodyKind::Multipart
    );
    assert_eq!(route("POST", DIGEST).unwrap().route.body, BodyKind::Binary);
    assert_eq!(
        route("GET", "/api/tags").unwrap().route.body,
        BodyKind::None
    );
    assert_eq!(
        route("DELETE", "/api/delete").unwrap().route.body,
        BodyKind::Json
    );
    assert_eq!(
        route("GET", "/api/tags").unwrap().route.listing,
        Some(Listing::Tags)
    );
    assert_eq!(
        route("GET", "/v1/models").unwrap().route.listing,
        Some(Listing::V1Models)
    );
    assert_eq!(
        route("GET", "/api/ps").unwrap().route.listing,
        Some(Listing::Ps)
    );
    assert_eq!(route("GET", "/v1/models/x").unwrap().route.listing, None);
    assert_eq!(route("POST", "/api/chat").unwrap().route.listing, None);
}

#[test]
fn wrong_methods_are_405_with_the_allowed_list() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("GET", "/api/chat", &["POST"]),
        ("HEAD", "/api/chat", &["POST"]),
        ("PUT", "/api/generate", &["POST"]),
        ("OPTIONS", "/v1/chat/completions", &["POST"]),
        ("POST", "/", &["GET", "HEAD"]),
        ("DELETE", "/", &["GET", "HEAD"]),
        ("HEAD", "/api/version", &["GET"]),
        ("HEAD", "/api/tags", &["GET"]),
        ("POST", "/api/tags", &["GET"]),
        ("GET", "/api/show", &["POST"]),
        ("POST", "/v1/models", &["GET"]),
        ("DELETE", "/v1/models/llama3.2", &["GET"]),
        ("POST", "/api/ps", &["GET"]),
        ("GET", "/api/pull", &["POST"]),
        ("GET", DIGEST, &["POST", "HEAD"]),
        ("PUT", DIGEST, &["POST", "HEAD"]),
        ("POST", "/api/delete", &["DELETE"]),
        ("GET", "/api/delete", &["DELETE"]),
        ("GET", "/api/user/keys/abc", &["DELETE"]),
        ("GET", "/api/me", &["POST"]),
        ("POST", "/api/experimental/model-recommendations", &["GET"]),
        ("get", "/api/tags", &["GET"]),
        ("Post", "/api/chat", &["POST"]),
        ("CONNECT", "/api/chat", &["POST"]),
        ("TRACE", "/", &["GET", "HEAD"]),
    ];
    for (method, path, allow) in cases {
        let e = route(method, path).unwrap_err();
        assert_eq!(e, RouteError::MethodNotAllowed { allow }, "{method} {path}");
        assert_eq!(e.status(), 405);
    }
}

#[test]
fn unknown_paths_are_404() {
    for p in [
        "/api",
        "/v1",
        "/api/chats",
        "/api/Chat",
        "/API/CHAT",
        "/api/chat/x",
        "/v1/chat",
        "/v1/models/a/b",
        "/api/blobs",
        "/api/blobs/sha256:abc",
        "/api/blobs/sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "/api/blobs/sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "/api/blobs/md5:0123456789abcdef0123456789abcdef",
        "/api/user/keys",
        "/api/experimental/unknown",
        "/api/create/blob",
        "/v1/files",
        "/v2/models",
        "/metrics",
        "/api/chat%3A",
    ] {
        let e = route("GET", p).unwrap_err();
        assert_eq!(e, RouteError::NotFound, "{p}");
        assert_eq!(e.status(), 404);
    }
}

#[test]
fn bad_paths_are_400_before_matching() {
    for p in [
        "/api/chat/",
        "/api/../api/pull",
        "/api/chat?x",
        "/api%2fchat",
        "http://x/api/chat",
    ] {
        let e = route("POST", p).unwrap_err();
        assert!(matches!(e, RouteError::BadPath(_)), "{p}");
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with("bad request path: "));
    }
}

#[test]
fn an_overlong_target_is_414() {
    let long = format!("/api/{}", "a".repeat(crate::path::MAX_TARGET_LEN));
    let e = route("POST", &long).unwrap_err();
    assert_eq!(e, RouteError::BadPath(PathError::TooLong));
    assert_eq!(e.status(), 414);
}

#[test]
fn params_are_extracted() {
    let m = route("GET", "/v1/models/llama3.2%3Alatest").unwrap();
    assert_eq!(m.param, Some("llama3.2%3Alatest"));
    assert_eq!(m.model_param().as_deref(), Some("llama3.2:latest"));
    let m = route("POST", DIGEST).unwrap();
    assert_eq!(m.param, Some(&DIGEST["/api/blobs/".len()..]));
    assert_eq!(m.model_param(), None);
    let m = route("DELETE", "/api/user/keys/k-1").unwrap();
    assert_eq!(m.param, Some("k-1"));
    assert_eq!(route("GET", "/api/tags").unwrap().param, None);
}

#[test]
fn dialects() {
    assert_eq!(dialect_for_path("/api/chat"), Dialect::Ollama);
    assert_eq!(dialect_for_path("/"), Dialect::Ollama);
    assert_eq!(dialect_for_path("/v1/chat/completions"), Dialect::OpenAi);
    assert_eq!(dialect_for_path("/v1/nope"), Dialect::OpenAi);
    assert_eq!(dialect_for_path("/v1"), Dialect::OpenAi);
    assert_eq!(dialect_for_path("/v1/messages"), Dialect::Anthropic);
    assert_eq!(
        dialect_for_path("/v1/messages/count_tokens"),
        Dialect::Anthropic
    );
    assert_eq!(
        dialect_for_path("/v1/messages?beta=true"),
        Dialect::Anthropic
    );
    assert_eq!(dialect_for_path("/v1messages"), Dialect::Ollama);
    for r in ROUTES {
        assert_eq!(r.dialect, dialect_for_path(r.path), "{}", r.name);
    }
}

#[test]
fn route_names_are_unique_and_methods_upper_case() {
    let mut names: Vec<_> = ROUTES.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ROUTES.len());
    for r in ROUTES {
        assert!(r
            .methods
            .iter()
            .all(|m| m.bytes().all(|b| b.is_ascii_uppercase())));
        assert_eq!(
            path::check(r.path).is_ok(),
            !r.path.contains('{'),
            "{}",
            r.path
        );
    }
}

#[test]
fn class_display_and_serde() {
    assert_eq!(EndpointClass::Admin.to_string(), "admin");
    assert_eq!(
        serde_json::to_string(&EndpointClass::Inference).unwrap(),
        "\"inference\""
    );
    let c: EndpointClass = serde_json::from_str("\"account\"").unwrap();
    assert_eq!(c, EndpointClass::Account);
    assert_eq!(EndpointClass::parse("ops"), Some(EndpointClass::Ops));
    assert_eq!(EndpointClass::parse("all"), None);
}

#[test]
fn only_the_queries_a_route_accepts_pass_and_the_path_goes_on_without_them() {
    let m = route("POST", "/v1/messages?beta=true").unwrap();
    assert_eq!(m.route.name, "v1.messages");
    assert_eq!(m.path, "/v1/messages");
    assert_eq!(route("POST", "/v1/messages").unwrap().path, "/v1/messages");
    let query = Err(RouteError::BadPath(path::PathError::Query));
    for target in [
        // Another route, another query, another spelling, more after it.
        "/api/chat?beta=true",
        "/v1/chat/completions?beta=true",
        "/v1/messages?beta=false",
        "/v1/messages?BETA=true",
        "/v1/messages?beta=true&x=1",
        "/v1/messages?beta=true?beta=true",
        "/v1/messages?beta=true#x",
        "/v1/messages?",
        "/v1/messages?x=1",
    ] {
        assert_eq!(route("POST", target), query, "{target}");
    }
    // The path before an accepted query is checked as ever.
    assert!(matches!(
        route("POST", "/v1//messages?beta=true"),
        Err(RouteError::BadPath(path::PathError::EmptySegment))
    ));
    assert!(matches!(
        route("POST", "/v1/messages/?beta=true"),
        Err(RouteError::BadPath(path::PathError::TrailingSlash))
    ));
    assert_eq!(
        route("POST", "/v1/nope?beta=true"),
        Err(RouteError::NotFound)
    );
    assert!(matches!(
        route("GET", "/v1/messages?beta=true"),
        Err(RouteError::MethodNotAllowed { .. })
    ));
}
