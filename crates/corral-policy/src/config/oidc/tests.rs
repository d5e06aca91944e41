use std::time::Duration;

use crate::config::{Config, ConfigError, IdpUrl};
use crate::oidc::Algorithm;

const BASE: &str = r#"
[oidc]
issuer = "https://id.example.com/realms/ml"
audience = "corral"
"#;

fn parse(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(&format!("{BASE}{extra}"))
}

fn err(extra: &str) -> ConfigError {
    parse(extra).unwrap_err()
}

#[test]
fn no_section_no_tokens() {
    assert!(Config::from_toml_str("").unwrap().oidc.is_none());
}

#[test]
fn defaults() {
    let c = parse("default_policy = \"user\"\n").unwrap();
    let o = c.oidc.unwrap();
    assert_eq!(o.issuer, "https://id.example.com/realms/ml");
    assert_eq!(
        o.discovery.as_str(),
        "https://id.example.com/realms/ml/.well-known/openid-configuration"
    );
    assert_eq!(o.discovery.host(), "id.example.com");
    assert_eq!(o.discovery.port(), 443);
    assert_eq!(o.jwks_uri, None);
    assert_eq!(o.algorithms, Algorithm::DEFAULT.to_vec());
    assert_eq!(o.user_claim.as_str(), "sub");
    assert_eq!(o.roles_claim.as_str(), "groups");
    assert_eq!(o.leeway, Duration::from_secs(60));
    assert_eq!(o.refresh, Duration::from_secs(600));
    assert_eq!(o.default_policy.as_deref(), Some("user"));
}

#[test]
fn keycloak_example_keeps_the_table_order() {
    let c = Config::from_toml_str(
        r#"
[policies.readonly]
endpoints = ["discovery"]

[oidc]
issuer = "http://127.0.0.1:8080/realms/ml"
audience = "corral"
algorithms = ["RS256", "ES256", "RS256"]
user_claim = "preferred_username"
roles_claim = "realm_access.roles"
leeway = "30s"
refresh = "5m"
ca_file = "idp-ca.pem"

[oidc.policies]
"ml-users" = "user"
"ml-readers" = "readonly"
"ml-admins" = "admin"
"#,
    )
    .unwrap();
    let o = c.oidc.unwrap();
    let order: Vec<&str> = o.policies.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        order,
        ["ml-users", "ml-readers", "ml-admins"],
        "file order, not sorted"
    );
    assert_eq!(o.algorithms, [Algorithm::Rs256, Algorithm::Es256]);
    assert_eq!(o.default_policy, None);
    assert_eq!(o.leeway, Duration::from_secs(30));
    assert!(!o.discovery.tls());
    assert_eq!(o.discovery.authority(), "127.0.0.1:8080");
    assert_eq!(
        o.to_string(),
        "issuer=http://127.0.0.1:8080/realms/ml audience=corral algorithms=RS256,ES256 \
         user_claim=preferred_username roles_claim=realm_access.roles \
         policies=ml-users:user,ml-readers:readonly,ml-admins:admin default_policy=none \
         leeway=30s refresh=5m"
    );
}

#[test]
fn ca_file_is_relative_to_the_config_file() {
    let mut c = parse("default_policy = \"user\"\nca_file = \"ca.pem\"\n").unwrap();
    c.resolve_paths_from(std::path::Path::new("/etc/corral"));
    assert_eq!(
        c.oidc.unwrap().ca_file.as_deref(),
        Some(std::path::Path::new("/etc/corral/ca.pem"))
    );
}

#[test]
fn mistakes_name_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[oidc]\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "required"),
        ("[oidc]\nissuer = \"https://a\"\ndefault_policy = \"user\"\n", "oidc.audience", "required"),
        ("[oidc]\nissuer = \"http://id.example.com\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "https"),
        ("[oidc]\nissuer = \"ftp://x\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "https"),
        ("[oidc]\nissuer = \"https://u:p@x\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "credentials"),
        ("[oidc]\nissuer = \"https://x#f\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "fragment"),
        ("[oidc]\nissuer = \"https://x/realms/a?x=1\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "query"),
        ("[oidc]\nissuer = \"https://x?\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "query"),
        ("[oidc]\nissuer = \"https://x/a#\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "fragment"),
        ("[oidc]\nissuer = \"https://x:0\"\naudience = \"a\"\ndefault_policy = \"user\"\n", "oidc.issuer", "port"),
        ("[oidc]\nissuer = \"https://x\"\naudience = \"\"\ndefault_policy = \"user\"\n", "oidc.audience", "required"),
    ];
    for (text, path, words) in cases {
        let e = Config::from_toml_str(text).unwrap_err();
        assert_eq!(e.path, *path, "{text}");
        assert!(e.message.contains(words), "{text}: {e}");
    }
    let cases: &[(&str, &str, &str)] = &[
        (
            "default_policy = \"user\"\njwks_uri = \"http://idp.internal/certs\"\n",
            "oidc.jwks_uri",
            "https",
        ),
        (
            "default_policy = \"user\"\nalgorithms = [\"HS256\"]\n",
            "oidc.algorithms[0]",
            "HMAC",
        ),
        (
            "default_policy = \"user\"\nalgorithms = [\"RS256\", \"none\"]\n",
            "oidc.algorithms[1]",
            "never accepted",
        ),
        (
            "default_policy = \"user\"\nalgorithms = [\"rs256\"]\n",
            "oidc.algorithms[0]",
            "unknown algorithm",
        ),
        (
            "default_policy = \"user\"\nalgorithms = []\n",
            "oidc.algorithms",
            "at least one",
        ),
        (
            "default_policy = \"user\"\nuser_claim = \"a..b\"\n",
            "oidc.user_claim",
            "claim name",
        ),
        (
            "default_policy = \"user\"\nroles_claim = \"\"\n",
            "oidc.roles_claim",
            "claim name",
        ),
        (
            "default_policy = \"nobody\"\n",
            "oidc.default_policy",
            "no policy named \"nobody\"",
        ),
        ("", "oidc.policies", "no token could be given a policy"),
        (
            "[oidc.policies]\n\"ml\" = \"root\"\n",
            "oidc.policies.\"ml\"",
            "no policy named \"root\"",
        ),
        (
            "default_policy = \"user\"\nleeway = \"10m\"\n",
            "oidc.leeway",
            "at most 5m",
        ),
        (
            "default_policy = \"user\"\njwks_uri = \"https://x/certs#k\"\n",
            "oidc.jwks_uri",
            "fragment",
        ),
        (
            "default_policy = \"user\"\nleeway = -1\n",
            "oidc.leeway",
            "duration",
        ),
        (
            "default_policy = \"user\"\nleeway = \"soon\"\n",
            "oidc.leeway",
            "duration",
        ),
        (
            "default_policy = \"user\"\nrefresh = \"1s\"\n",
            "oidc.refresh",
            "30s to 24h",
        ),
        (
            "default_policy = \"user\"\nca_file = \"\"\n",
            "oidc.ca_file",
            "empty",
        ),
        (
            "default_policy = \"user\"\nbogus = 1\n",
            "oidc.bogus",
            "unknown field",
        ),
    ];
    for (extra, path, words) in cases {
        let e = err(extra);
        assert_eq!(e.path, *path, "{extra}: {e}");
        assert!(e.message.contains(words), "{extra}: {e}");
    }
}

#[test]
fn idp_urls() {
    let u = IdpUrl::parse("https://ID.example.com:8443/certs?x=1").unwrap();
    assert_eq!(
        (u.host(), u.port(), u.path_and_query(), u.tls()),
        ("id.example.com", 8443, "/certs?x=1", true)
    );
    assert_eq!(u.authority(), "id.example.com:8443");
    let u = IdpUrl::parse("http://[::1]:9000").unwrap();
    assert_eq!((u.host(), u.path_and_query()), ("::1", "/"));
    assert_eq!(u.authority(), "[::1]:9000");
    assert!(IdpUrl::parse("http://localhost/x").is_ok());
    assert!(IdpUrl::parse("http://127.8.9.1/x").is_ok());
    for bad in [
        "http://10.0.0.1/",
        "http://localhost.evil.com/",
        "https://",
        "https://[::1/",
        "https://a b/",
        "https://a:99999/",
        "https://a/\n",
        "//a/",
    ] {
        assert!(IdpUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_example_files_section_parses_once_uncommented() {
    let text = include_str!("../../../examples/corral.toml");
    let (head, tail) = text.split_once("# [oidc]\n").unwrap();
    let section: Vec<&str> = tail
        .lines()
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
        .collect();
    let c = Config::from_toml_str(&format!("{head}[oidc]\n{}\n", section.join("\n"))).unwrap();
    let o = c.oidc.unwrap();
    assert_eq!(o.user_claim.as_str(), "preferred_username");
    assert_eq!(o.default_policy.as_deref(), Some("chat-frontend"));
    assert_eq!(o.policies.len(), 2);
}

#[test]
fn discovery_follows_the_issuer_exactly_trailing_slash_and_all() {
    let section = |issuer: &str| {
        let c = Config::from_toml_str(&format!(
            "[oidc]\nissuer = \"{issuer}\"\naudience = \"a\"\ndefault_policy = \"user\"\n"
        ))
        .unwrap();
        (*c.oidc.unwrap()).clone()
    };
    // OpenID Connect Discovery 1.0 §4.1: one terminating "/" is removed before the
    // well-known path is appended; the issuer itself is kept as written.
    for (issuer, discovery) in [
        (
            "https://x/realms/a",
            "https://x/realms/a/.well-known/openid-configuration",
        ),
        (
            "https://x/realms/a/",
            "https://x/realms/a/.well-known/openid-configuration",
        ),
        ("https://x", "https://x/.well-known/openid-configuration"),
        ("https://x/", "https://x/.well-known/openid-configuration"),
        (
            "https://token.actions.githubusercontent.com",
            "https://token.actions.githubusercontent.com/.well-known/openid-configuration",
        ),
    ] {
        let o = section(issuer);
        assert_eq!(o.issuer, issuer);
        assert_eq!(o.discovery.as_str(), discovery, "{issuer}");
    }
}

#[test]
fn a_jwks_uri_may_carry_a_query_sent_as_written() {
    let c = parse("default_policy = \"user\"\njwks_uri = \"https://x/certs?realm=ml\"\n").unwrap();
    let uri = c.oidc.unwrap().jwks_uri.clone().unwrap();
    assert_eq!(uri.path_and_query(), "/certs?realm=ml");
}

#[test]
fn a_leeway_of_zero_is_strict_and_allowed() {
    for zero in ["leeway = \"0s\"", "leeway = 0"] {
        let c = parse(&format!("default_policy = \"user\"\n{zero}\n")).unwrap();
        let o = c.oidc.unwrap();
        assert_eq!(o.leeway, Duration::ZERO, "{zero}");
        assert!(o.to_string().contains("leeway=0s"), "{o}");
    }
}
