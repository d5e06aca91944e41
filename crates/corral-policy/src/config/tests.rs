use super::*;

fn err(text: &str) -> ConfigError {
    Config::from_toml_str(text).unwrap_err()
}

#[test]
fn empty_file_is_the_builtin_config() {
    assert_eq!(Config::from_toml_str("").unwrap(), Config::builtin());
    assert_eq!(Config::default(), Config::builtin());
}

#[test]
fn builtin_policies() {
    let c = Config::builtin();
    let user = c.policy("user").unwrap();
    assert!(user.allows_class(EndpointClass::Inference));
    assert!(user.allows_class(EndpointClass::Discovery));
    assert!(!user.allows_class(EndpointClass::Ops));
    assert!(!user.allows_class(EndpointClass::Admin));
    assert!(!user.allows_class(EndpointClass::Account));
    assert!(user.allows_model("anything:at-all"));
    assert!(user.tools && user.images && !user.cloud);
    assert_eq!(user.max_num_ctx, Some(32768));
    assert_eq!(user.max_num_predict, None);
    assert_eq!(user.max_keep_alive, Some(Duration::from_secs(1800)));
    assert_eq!(user.max_body_bytes, Some(32 * MIB));
    let admin = c.policy("admin").unwrap();
    for class in EndpointClass::ALL {
        assert!(admin.allows_class(class));
    }
    assert!(admin.cloud && admin.tools && admin.images);
    assert_eq!(admin.max_num_ctx, None);
    assert_eq!(admin.max_keep_alive, None);
    assert_eq!(admin.body_limit(BodyKind::Binary), None);
    assert_eq!(admin.body_limit(BodyKind::Json), Some(32 * MIB));
    assert_eq!(admin.body_limit(BodyKind::None), Some(0));
    assert!(c.policy("nobody").is_none());
}

#[test]
fn server_defaults() {
    // Unset keys stay unset so command-line flags and the gate's defaults apply.
    let s = Config::builtin().server;
    assert_eq!(s, ServerSection::default());
    assert_eq!(s.listen, None);
    assert_eq!(s.upstream, None);
    assert_eq!(s.idle_timeout, None);
    assert!(!s.allow_plaintext);
    assert_eq!(Config::builtin().audit.max_bytes, 104_857_600);
}

#[test]
fn example_file_parses() {
    let text = include_str!("../../examples/corral.toml");
    let c = Config::from_toml_str(text).unwrap();
    assert_eq!(c.policies.len(), 3);
    let user = c.policy("user").unwrap();
    assert_eq!(*user, Policy::builtin_user());
    let admin = c.policy("admin").unwrap();
    assert_eq!(*admin, Policy::builtin_admin());
    let fe = c.policy("chat-frontend").unwrap();
    assert!(fe.allows_model("llama3.2:1b"));
    assert!(fe.allows_model("qwen2.5:7b"));
    assert!(!fe.allows_model("qwen2.5:14b"));
    assert!(!fe.tools);
    assert_eq!(fe.max_num_predict, Some(1024));
    assert_eq!(fe.max_keep_alive, Some(Duration::from_secs(300)));
    assert_eq!(fe.max_body_bytes, Some(MIB));
    assert_eq!(fe.max_requests_per_minute, Some(60));
    assert_eq!(fe.max_concurrent_requests, Some(2));
    assert_eq!(fe.max_tokens_per_day, Some(500_000));
    assert_eq!(fe.max_tokens_per_hour, None);
    assert_eq!(c.audit.max_bytes, 100 * MIB);
    assert_eq!(c.server.listen.unwrap().to_string(), "127.0.0.1:11435");
    assert_eq!(c.server.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.server.connect_timeout, Some(Duration::from_secs(5)));
}

#[test]
fn full_server_section() {
    let c = Config::from_toml_str(
        r#"
        [server]
        listen = "[::1]:9000"
        upstream = "http://Ollama.internal:8443/"
        idle_timeout = 30
        connect_timeout = "1s 500ms"
        tls_cert = "c.pem"
        tls_key = "k.pem"
        allow_plaintext = true
        metrics_listen = "127.0.0.1:9464"
        [audit]
        path = "/var/log/a.ndjson"
        max_bytes = 65536
        keep = 3
        "#,
    )
    .unwrap();
    assert_eq!(c.server.listen.unwrap().to_string(), "[::1]:9000");
    assert_eq!(
        c.server.metrics_listen.unwrap().to_string(),
        "127.0.0.1:9464"
    );
    let up = c.server.upstream.as_ref().unwrap();
    assert_eq!(up.to_string(), "http://ollama.internal:8443");
    assert_eq!(up.authority(), "ollama.internal:8443");
    assert_eq!(c.server.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.server.connect_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        c.server.tls_cert.as_deref(),
        Some(std::path::Path::new("c.pem"))
    );
    assert!(c.server.allow_plaintext);
    assert_eq!(c.audit.keep, 3);
    assert_eq!(c.audit.max_bytes, 65536);
}

#[test]
fn redefinition_starts_from_the_builtin() {
    let c = Config::from_toml_str("[policies.user]\nmodels = [\"llama*\"]\n[policies.admin]\ncloud = false\n[policies.ci]\ntools = false\n").unwrap();
    let user = c.policy("user").unwrap();
    assert!(!user.allows_model("qwen2.5"));
    assert!(user.allows_model("llama3.2"));
    assert_eq!(user.max_num_ctx, Some(32768));
    let admin = c.policy("admin").unwrap();
    assert!(!admin.cloud);
    assert!(admin.allows_class(EndpointClass::Admin));
    let ci = c.policy("ci").unwrap();
    assert_eq!(ci.name, "ci");
    assert!(!ci.tools);
    assert!(!ci.allows_class(EndpointClass::Admin));
    assert!(ci.allows_class(EndpointClass::Inference));
}

#[test]
fn endpoints_all() {
    let c = Config::from_toml_str("[policies.ops]\nendpoints = [\"ops\", \"all\"]\n").unwrap();
    assert_eq!(c.policy("ops").unwrap().endpoints.len(), 5);
}

#[test]
fn a_policy_that_allows_nothing_is_a_start_up_error() {
    // An empty list is a mistake, or a way to disable keys that revoking them does better.
    for (name, text) in [
        ("none", "[policies.none]\nendpoints = []\n"),
        ("user", "[policies.user]\nendpoints = []\n"),
        (
            "admin",
            "[policies.admin]\nendpoints = []\nmodels = [\"*\"]\n",
        ),
        ("inline", "policies.inline = { endpoints = [] }\n"),
    ] {
        let e = err(text);
        assert_eq!(e.path, format!("policies.{name}.endpoints"), "{text}");
        assert_eq!(
            e.to_string(),
            format!(
                "policies.{name}.endpoints: empty list allows nothing; to disable a key, revoke it"
            )
        );
    }
}

#[test]
fn no_models_with_a_class_that_names_models_is_a_start_up_error() {
    for (text, class) in [
        ("[policies.p]\nmodels = []\n", "inference"),
        (
            "[policies.p]\nmodels = []\nendpoints = [\"discovery\"]\n",
            "discovery",
        ),
        ("[policies.p]\nmodels = []\nendpoints = [\"ops\"]\n", "ops"),
        (
            "[policies.p]\nmodels = []\nendpoints = [\"admin\", \"account\"]\n",
            "admin",
        ),
        (
            "[policies.p]\nmodels = []\nendpoints = [\"all\"]\n",
            "inference",
        ),
        ("[policies.p]\nmodels = []\ncloud = true\n", "inference"),
    ] {
        let e = err(text);
        assert_eq!(e.path, "policies.p.models", "{text}");
        assert_eq!(
            e.message,
            format!("empty list allows no model, yet the policy allows {class} endpoints, which name models; list the models, or to disable a key, revoke it"),
            "{text}"
        );
    }
    // The admin policy keeps its endpoints when redefined: no models is an error there too.
    assert_eq!(
        err("[policies.admin]\nmodels = []\n").path,
        "policies.admin.models"
    );
    // Account routes name no model: such a policy needs none.
    let c =
        Config::from_toml_str("[policies.acct]\nendpoints = [\"account\"]\nmodels = []\n").unwrap();
    let p = c.policy("acct").unwrap();
    assert!(p.models.is_empty());
    assert!(p.allows_class(EndpointClass::Account));
}

#[test]
fn errors_name_the_key_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[policies.user]\nmax_num_ctx = 0\n",
            "policies.user.max_num_ctx",
            "must be a positive integer",
        ),
        (
            "[policies.user]\nmax_num_ctx = -5\n",
            "policies.user.max_num_ctx",
            "must be a positive integer",
        ),
        (
            "[policies.user]\nmax_num_ctx = \"big\"\n",
            "policies.user.max_num_ctx",
            "must be a positive integer",
        ),
        (
            "[policies.user]\nmax_num_predict = 1.5\n",
            "policies.user.max_num_predict",
            "positive integer",
        ),
        (
            "[policies.user]\nmax_keep_alive = \"0s\"\n",
            "policies.user.max_keep_alive",
            "greater than zero",
        ),
        (
            "[policies.user]\nmax_keep_alive = 0\n",
            "policies.user.max_keep_alive",
            "greater than zero",
        ),
        (
            "[policies.user]\nmax_keep_alive = \"forever\"\n",
            "policies.user.max_keep_alive",
            "duration",
        ),
        (
            "[policies.user]\nmin_keep_alive = 0\n",
            "policies.user.min_keep_alive",
            "greater than zero",
        ),
        (
            "[policies.user]\nmin_keep_alive = \"1h\"\n",
            "policies.user.min_keep_alive",
            "1h is longer than max_keep_alive (30m)",
        ),
        (
            "[policies.user]\nmax_keep_alive = \"5m\"\nmin_keep_alive = \"6m\"\n",
            "policies.user.min_keep_alive",
            "longer than max_keep_alive",
        ),
        (
            "[policies.user]\nmax_body_bytes = \"12 parsecs\"\n",
            "policies.user.max_body_bytes",
            "size",
        ),
        (
            "[policies.user]\nmax_body_bytes = 0\n",
            "policies.user.max_body_bytes",
            "greater than zero",
        ),
        (
            "[policies.user]\nmax_requests_per_minute = 0\n",
            "policies.user.max_requests_per_minute",
            "must be a positive integer",
        ),
        (
            "[policies.user]\nmax_concurrent_requests = \"4\"\n",
            "policies.user.max_concurrent_requests",
            "must be a positive integer",
        ),
        (
            "[policies.user]\nmax_tokens_per_hour = -1\n",
            "policies.user.max_tokens_per_hour",
            "must be a positive integer",
        ),
        (
            "[policies.user]\nmax_tokens_per_day = 1000000000001\n",
            "policies.user.max_tokens_per_day",
            "at most 1000000000000",
        ),
        (
            "[policies.user]\nendpoints = [\"inference\", \"root\"]\n",
            "policies.user.endpoints[1]",
            "unknown endpoint class \"root\"",
        ),
        (
            "[policies.user]\nmodels = [\"ok\", \"\"]\n",
            "policies.user.models[1]",
            "must not be empty",
        ),
        (
            "[policies.user]\nmodels = [\"a b\"]\n",
            "policies.user.models[0]",
            "whitespace",
        ),
        (
            "[policies.user]\nmodels = [\"llama3.2\", \"[abc]\"]\n",
            "policies.user.models[1]",
            "model names use letters",
        ),
        (
            "[policies.user]\nmodels = [\"llama3.2:\"]\n",
            "policies.user.models[0]",
            "can never match",
        ),
        (
            "[policies.user]\nmodels = [\"llama3.2\", \"gpt-oss:120b-cloud\"]\n",
            "policies.user.models[1]",
            "set cloud = true",
        ),
        (
            "[policies.apps]\ncloud = false\nmodels = [\"kimi:cloud\"]\n",
            "policies.apps.models[0]",
            "denies",
        ),
        (
            "[policies.apps]\nmodels = [\"llama3.2\", \"sha256-65a329e9977c\"]\n",
            "policies.apps.models[1]",
            "reads as a model's digest",
        ),
        (
            "[policies.apps]\ncloud = true\nmodels = [\"library/65a329e9977c0123\"]\n",
            "policies.apps.models[0]",
            "write the model's name",
        ),
        (
            "[audit]\nmax_bytes = 1\n",
            "audit.max_bytes",
            "at least 64KiB",
        ),
        (
            "[policies.user]\nmax_keep_alive = \"1000000000h\"\n",
            "policies.user.max_keep_alive",
            "at most 2562047h",
        ),
        (
            "[policies.\"Bad Name\"]\n",
            "policies.Bad Name",
            "policy names use only",
        ),
        (
            "[policies.UPPER]\n",
            "policies.UPPER",
            "policy names use only",
        ),
        (
            "[server]\nlisten = \"x\"\n",
            "server.listen",
            "invalid socket address \"x\"",
        ),
        (
            "[server]\nmetrics_listen = \"localhost:9464\"\n",
            "server.metrics_listen",
            "host names such as localhost are not resolved",
        ),
        (
            "[server]\nlisten = \"localhost:80\"\n",
            "server.listen",
            "host names such as localhost are not resolved",
        ),
        (
            "[server]\nupstream = \"ftp://x\"\n",
            "server.upstream",
            "must start with http://",
        ),
        (
            "[server]\nupstream = \"http://u:p@x\"\n",
            "server.upstream",
            "credentials",
        ),
        (
            "[server]\nupstream = \"http://x/api\"\n",
            "server.upstream",
            "path",
        ),
        (
            "[server]\nupstream = \"http://x:0\"\n",
            "server.upstream",
            "port",
        ),
        (
            "[server]\nupstream = \"http://x:99999\"\n",
            "server.upstream",
            "port",
        ),
        (
            "[server]\nupstream = \"http://\"\n",
            "server.upstream",
            "missing host",
        ),
        (
            "[server]\nupstream = \"http://::1\"\n",
            "server.upstream",
            "invalid",
        ),
        (
            "[server]\nupstream = \"http://a!b\"\n",
            "server.upstream",
            "invalid host",
        ),
        (
            "[server]\nidle_timeout = \"soon\"\n",
            "server.idle_timeout",
            "duration",
        ),
        (
            "[server]\nidle_timeout = 0\n",
            "server.idle_timeout",
            "greater than zero",
        ),
        (
            "[server]\nconnect_timeout = -1\n",
            "server.connect_timeout",
            "duration",
        ),
        // A deadline this far out overflows the clock: every streamed answer panicked.
        (
            "[server]\nidle_timeout = \"18446744073709551615s\"\n",
            "server.idle_timeout",
            "at most 365d",
        ),
        (
            "[server]\nconnect_timeout = \"366d\"\n",
            "server.connect_timeout",
            "at most 365d",
        ),
        (
            "[server]\ntls_cert = \"c.pem\"\n",
            "server.tls_key",
            "required",
        ),
        (
            "[server]\ntls_key = \"k.pem\"\n",
            "server.tls_cert",
            "required",
        ),
        ("[audit]\nkeep = 0\n", "audit.keep", "from 1"),
        ("[audit]\nkeep = 10001\n", "audit.keep", "from 1"),
        ("[audit]\nmax_bytes = \"lots\"\n", "audit.max_bytes", "size"),
        ("[audit]\npath = \"\"\n", "audit.path", "must not be empty"),
    ];
    for (text, path, msg) in cases {
        let e = err(text);
        assert_eq!(e.path, *path, "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: {e}");
        assert!(e.to_string().contains(&format!("{path}: ")), "{e}");
    }
}

#[test]
fn unknown_keys_are_reported_with_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n",
            "server.lisen",
            "unknown field `lisen`",
        ),
        (
            "[audit]\nrotate = 1\n",
            "audit.rotate",
            "unknown field `rotate`",
        ),
        (
            "[policies.user]\nmax_ctx = 5\n",
            "policies.user.max_ctx",
            "unknown field `max_ctx`",
        ),
        (
            "[policies.user]\ntools = true\n\n# note\nimages_allowed = false\n",
            "policies.user.images_allowed",
            "unknown field",
        ),
        (
            "[servr]\nlisten = \"x\"\n",
            "servr",
            "unknown field `servr`",
        ),
        ("trusted = true\n", "trusted", "unknown field `trusted`"),
        (
            "[polices.x]\nendpoints = [\"all\"]\n",
            "polices",
            "unknown field `polices`",
        ),
        (
            "[policies.x]\nx = 1\n",
            "policies.x.x",
            "unknown field `x`",
        ),
        ("[policies.a.b]\n", "policies.a.b", "unknown field `b`"),
        (
            "[policies]\nx = { tools = false, bogus = 1 }\n",
            "policies.x.bogus",
            "unknown field `bogus`",
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\n[policies.x]\nmodels = [\"a\"]\n[policies.y]\nlimits = { a = 1 }\n",
            "policies.y.limits",
            "unknown field `limits`",
        ),
    ];
    for (text, path, msg) in cases {
        let e = err(text);
        assert_eq!(e.path, *path, "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: {e}");
        assert!(e.line.is_some(), "{e}");
    }
}

#[test]
fn type_errors_name_the_key_path() {
    let cases: &[(&str, &str)] = &[
        ("[policies.user]\ntools = \"yes\"\n", "policies.user.tools"),
        (
            "[policies.user]\nendpoints = \"all\"\n",
            "policies.user.endpoints",
        ),
        (
            "[policies.user]\nmodels = [\n  \"a\",\n  3,\n]\n",
            "policies.user.models",
        ),
        ("[server]\nallow_plaintext = 1\n", "server.allow_plaintext"),
        ("[audit]\nkeep = \"ten\"\n", "audit.keep"),
        ("[server]\nlisten = 5\n", "server.listen"),
        ("server = 5\n", "server"),
        ("[policies]\nx = 5\n", "policies.x"),
    ];
    for (text, path) in cases {
        let e = err(text);
        assert_eq!(e.path, *path, "{text}: {e}");
        assert!(!e.message.contains("Raw"), "{text}: {e}");
    }
    let e = err("[policies]\nx = 5\n");
    assert!(e.message.contains("expected a table"), "{e}");
}

/// Wrong types are said in TOML's words, not Rust's or serde's (`i64`, `sequence`, `map`).
#[test]
fn type_errors_name_toml_types() {
    for (text, expected) in [
        ("[audit]\nkeep = \"3\"\n", "expected an integer"),
        ("[policies.p]\nendpoints = \"all\"\n", "expected an array"),
        ("policies = 5\n", "expected a table"),
    ] {
        let e = err(text);
        assert!(e.message.contains(expected), "{text}: {e}");
        for jargon in ["i64", "sequence", "map"] {
            assert!(!e.message.contains(jargon), "{text}: {e}");
        }
    }
}

#[test]
fn syntax_errors_are_reported_with_a_line() {
    let e = err("[server]\nlisten = \n");
    assert!(e.line.is_some(), "{e}");
    let e = err("[server\n");
    assert!(!e.message.is_empty());
}

/// Errors end up as the one line of `corral: ...` on stderr; TOML's own messages for a syntax
/// error come as several lines (`invalid table header` / `expected ...`).
#[test]
fn syntax_errors_are_one_line() {
    for text in [
        "[policies.user]\n[policies.user]\n",
        "[server]\nlisten = \n",
        "[server\n",
        "[policies.user]\nmodels = [\"a\", \n",
    ] {
        let e = err(text);
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "{text:?}: {shown:?}");
        assert!(
            !e.message.is_empty() && !e.message.ends_with(';'),
            "{shown:?}"
        );
    }
    let e = err("[policies.user]\n[policies.user]\n");
    assert!(
        e.message
            .contains("invalid table header; duplicate key `user`"),
        "{e}"
    );
}

#[test]
fn unlimited_lifts_limits() {
    let c = Config::from_toml_str(
        "[policies.user]\nmax_num_ctx = \"unlimited\"\nmax_keep_alive = \"none\"\nmax_body_bytes = \"unlimited\"\n",
    )
    .unwrap();
    let u = c.policy("user").unwrap();
    assert_eq!(u.max_num_ctx, None);
    assert_eq!(u.max_keep_alive, None);
    assert_eq!(u.max_body_bytes, None);
    // A floor with no ceiling is fine; "none" is its default.
    let c = Config::from_toml_str(
        "[policies.user]\nmax_keep_alive = \"unlimited\"\nmin_keep_alive = \"24h\"\n[policies.other]\nmin_keep_alive = \"none\"\n",
    )
    .unwrap();
    assert_eq!(
        c.policy("user").unwrap().min_keep_alive,
        Some(std::time::Duration::from_secs(86_400))
    );
    assert_eq!(c.policy("other").unwrap().min_keep_alive, None);
    assert_eq!(
        u.body_limit(BodyKind::Json),
        Some(DEFAULT_INSPECTED_BODY_LIMIT)
    );
    assert_eq!(u.body_limit(BodyKind::Binary), None);
}

#[test]
fn sizes() {
    assert_eq!(parse_size("100MiB"), Some(104_857_600));
    assert_eq!(parse_size("100 mib"), Some(104_857_600));
    assert_eq!(parse_size("1GB"), Some(1_000_000_000));
    assert_eq!(parse_size("1k"), Some(1000));
    assert_eq!(parse_size("2KiB"), Some(2048));
    assert_eq!(parse_size("12"), Some(12));
    assert_eq!(parse_size("12B"), Some(12));
    assert_eq!(parse_size("MiB"), None);
    assert_eq!(parse_size("-1"), None);
    assert_eq!(parse_size("1.5MiB"), None);
    assert_eq!(parse_size("99999999999999TiB"), None);
}

#[test]
fn upstream_urls() {
    let u = UpstreamAddr::parse("http://localhost").unwrap();
    assert_eq!(u.port(), 80);
    assert!(u.is_loopback());
    let u = UpstreamAddr::parse("http://[::1]:11434").unwrap();
    assert_eq!(u.authority(), "[::1]:11434");
    assert_eq!(u.to_string(), "http://[::1]:11434");
    assert!(u.is_loopback());
    assert!(!UpstreamAddr::parse("http://10.1.2.3:11434")
        .unwrap()
        .is_loopback());
    assert!(UpstreamAddr::parse("http://x?q").is_err());
    assert!(UpstreamAddr::parse("http://x#f").is_err());
    assert!(UpstreamAddr::parse("http://[zz]:1").is_err());
    assert!(UpstreamAddr::parse("HTTP://x").is_err());
    // The gate reaches Ollama in plain HTTP only: https is refused where it is read.
    let e = err("[server]\nupstream = \"https://[::1]:11434\"\n");
    assert_eq!(e.path, "server.upstream");
    assert!(
        e.message.contains("https upstreams are not supported"),
        "{e}"
    );
}

#[test]
fn error_values_are_sanitised() {
    let e = err("[server]\nlisten = \"\\u001b[31mred\"\n");
    assert!(!e.to_string().contains('\u{1b}'), "{e}");
}

#[test]
fn key_path_helper() {
    let text = "a = 1\n[server]\nlisten = 2\n[policies.\"x\"]\n models = [\n 1,\n]\n";
    assert_eq!(raw::key_path_at(text, 0).as_deref(), Some("a"));
    let off = text.find("listen").unwrap();
    assert_eq!(
        raw::key_path_at(text, off).as_deref(),
        Some("server.listen")
    );
    let off = text.find(" 1,").unwrap();
    assert_eq!(
        raw::key_path_at(text, off).as_deref(),
        Some("policies.x.models")
    );
}

#[test]
fn allowances_are_read_and_default_to_unlimited() {
    let c = Config::from_toml_str(
        "[policies.app]\nmax_requests_per_minute = 120\nmax_concurrent_requests = 4\n\
         max_tokens_per_hour = 50000\nmax_tokens_per_day = \"unlimited\"\n",
    )
    .unwrap();
    let app = c.policy("app").unwrap();
    assert_eq!(app.max_requests_per_minute, Some(120));
    assert_eq!(app.max_concurrent_requests, Some(4));
    assert_eq!(app.max_tokens_per_hour, Some(50_000));
    assert_eq!(app.max_tokens_per_day, None);
    assert!(app.has_allowances());
    for builtin in [Policy::builtin_user(), Policy::builtin_admin()] {
        assert!(!builtin.has_allowances(), "{}", builtin.name);
    }
}

#[test]
fn policy_summary_line() {
    assert_eq!(
        Policy::builtin_user().to_string(),
        "endpoints=inference,discovery models=* tools=yes images=yes cloud=no max_num_ctx=32768 \
         max_num_predict=unlimited max_keep_alive=30m min_keep_alive=none max_body_bytes=33554432 \
         max_requests_per_minute=unlimited max_concurrent_requests=unlimited \
         max_tokens_per_hour=unlimited max_tokens_per_day=unlimited"
    );
    let mut p = Policy::builtin_admin();
    p.endpoints.clear();
    p.models.clear();
    assert_eq!(
        p.to_string(),
        "endpoints=none models=none tools=yes images=yes cloud=yes max_num_ctx=unlimited \
         max_num_predict=unlimited max_keep_alive=unlimited min_keep_alive=none max_body_bytes=unlimited \
         max_requests_per_minute=unlimited max_concurrent_requests=unlimited \
         max_tokens_per_hour=unlimited max_tokens_per_day=unlimited"
    );
    p.max_requests_per_minute = Some(60);
    p.max_tokens_per_day = Some(100_000);
    assert!(p.to_string().ends_with(
        "max_requests_per_minute=60 max_concurrent_requests=unlimited \
             max_tokens_per_hour=unlimited max_tokens_per_day=100000"
    ));
}

#[test]
fn empty_tls_paths_are_refused() {
    let e = err("[server]\ntls_cert = \"\"\ntls_key = \"k.pem\"\n");
    assert_eq!(e.to_string(), "server.tls_cert: must not be empty");
    let e = err("[server]\ntls_cert = \"c.pem\"\ntls_key = \"\"\n");
    assert_eq!(e.to_string(), "server.tls_key: must not be empty");
}

#[test]
fn listen_addresses_from_the_command_line() {
    assert_eq!(
        parse_listen("[::1]:9000").unwrap().to_string(),
        "[::1]:9000"
    );
    assert_eq!(
        parse_listen(" 127.0.0.2:0 ").unwrap().to_string(),
        "127.0.0.2:0"
    );
    let e = parse_listen("localhost:11435").unwrap_err();
    assert!(
        e.contains("127.0.0.1:11435") && e.contains("not resolved"),
        "{e}"
    );
}

#[test]
fn relative_paths_are_taken_from_the_config_files_directory() {
    let mut c = Config::from_toml_str(
        "[server]\ntls_cert = \"tls/cert.pem\"\ntls_key = \"/etc/corral/key.pem\"\n[audit]\npath = \"audit.ndjson\"\n",
    )
    .unwrap();
    c.resolve_paths_from(std::path::Path::new("/etc/corral"));
    assert_eq!(
        c.server.tls_cert.as_deref(),
        Some(std::path::Path::new("/etc/corral/tls/cert.pem"))
    );
    assert_eq!(
        c.server.tls_key.as_deref(),
        Some(std::path::Path::new("/etc/corral/key.pem"))
    );
    assert_eq!(
        c.audit.path.as_deref(),
        Some(std::path::Path::new("/etc/corral/audit.ndjson"))
    );
}

/// `server.upstream` takes what `--upstream` takes: a URL, or `host:port` and `host` as
/// OLLAMA_HOST is written; the file's value is read once, into the address the gate uses.
#[test]
fn upstream_takes_the_ollama_host_forms_as_the_flag_does() {
    for (up, read) in [
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("ollama.lan", "http://ollama.lan:11434"),
        ("[::1]:11434", "http://[::1]:11434"),
        (" localhost:11434 ", "http://localhost:11434"),
        ("http://ollama.lan", "http://ollama.lan:80"),
    ] {
        let c = Config::from_toml_str(&format!("[server]\nupstream = \"{up}\"\n")).unwrap();
        let got = c.server.upstream.unwrap();
        assert_eq!(got.to_string(), read, "{up}");
        assert_eq!(Ok(got), UpstreamAddr::parse(up), "{up}");
    }
    for bad in ["127.0.0.1:11434/api", "u:p@host", "host:0", ""] {
        let e = Config::from_toml_str(&format!("[server]\nupstream = \"{bad}\"\n")).unwrap_err();
        assert_eq!(e.path, "server.upstream", "{bad}: {e}");
    }
}

#[test]
fn client_certificate_settings_are_read_and_resolved() {
    let mut c = Config::from_toml_str(
        "[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"clients/ca.pem\"\n\
         tls_client_crl = [\"crl.pem\", \"/var/lib/crl/b.pem\"]\n\
         [policies.apps]\nclient_cert_names = [\"app-*\", \"batch.example.com\"]\n",
    )
    .unwrap();
    c.resolve_paths_from(std::path::Path::new("/etc/corral"));
    assert_eq!(
        c.server.tls_client_ca.as_deref(),
        Some(std::path::Path::new("/etc/corral/clients/ca.pem"))
    );
    assert_eq!(
        c.server.tls_client_crl,
        vec![
            std::path::PathBuf::from("/etc/corral/crl.pem"),
            std::path::PathBuf::from("/var/lib/crl/b.pem")
        ]
    );
    let apps = c.policy("apps").unwrap();
    assert!(apps.allows_client_cert(["App-7"]));
    assert!(apps.allows_client_cert(["some cn", "batch.example.com"]));
    assert!(!apps.allows_client_cert(["batch.example.org"]));
    assert!(!apps.allows_client_cert(std::iter::empty()));
    assert!(apps
        .to_string()
        .ends_with(" client_cert_names=app-*,batch.example.com"));
    // Unbound policies take any connection, with a certificate or without.
    let user = c.policy("user").unwrap();
    assert_eq!(user.client_cert_names, None);
    assert!(user.allows_client_cert(std::iter::empty()));
    assert!(!user.to_string().contains("client_cert_names"));
    assert_eq!(c.check_client_certs(true, true, true), Ok(()));
}

#[test]
fn client_certificate_mistakes_name_their_key() {
    for (text, path, says) in [
        (
            "[server]\ntls_client_ca = \"\"\n",
            "server.tls_client_ca",
            "must not be empty",
        ),
        (
            "[server]\ntls_client_crl = [\"a.pem\", \"\"]\n",
            "server.tls_client_crl[1]",
            "must not be empty",
        ),
        (
            "[policies.apps]\nclient_cert_names = []\n",
            "policies.apps.client_cert_names",
            "empty list matches no certificate",
        ),
        (
            "[policies.apps]\nclient_cert_names = [\"ok\", \" app\"]\n",
            "policies.apps.client_cert_names[1]",
            "whitespace",
        ),
        (
            "[policies.apps]\nclient_cert_names = \"app-*\"\n",
            "policies.apps.client_cert_names",
            "",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.path, path, "{text}: {e}");
        assert!(e.message.contains(says), "{text}: {e}");
    }
}

#[test]
fn client_certificate_settings_that_cannot_work_are_refused_after_the_flags() {
    let bound =
        Config::from_toml_str("[policies.apps]\nclient_cert_names = [\"app-*\"]\n").unwrap();
    let e = bound.check_client_certs(true, false, false).unwrap_err();
    assert_eq!(e.path, "policies.apps.client_cert_names");
    assert!(
        e.message
            .contains("server.tls_client_ca (or --tls-client-ca)"),
        "{e}"
    );
    assert_eq!(bound.check_client_certs(true, true, false), Ok(()));

    let plain = Config::builtin();
    let e = plain.check_client_certs(false, true, false).unwrap_err();
    assert_eq!(e.path, "server.tls_client_ca");
    assert!(e.message.contains("server.tls_cert"), "{e}");
    let e = plain.check_client_certs(true, false, true).unwrap_err();
    assert_eq!(e.path, "server.tls_client_crl");
    assert_eq!(plain.check_client_certs(false, false, false), Ok(()));
    assert_eq!(plain.check_client_certs(true, false, false), Ok(()));
}
