use serde_json::{json, Value};

use super::*;
use crate::model::ModelPattern;

fn no_remote(_: &str) -> bool {
    false
}

fn policy(models: &[&str], cloud: bool) -> Policy {
    let mut p = Policy::builtin_user();
    p.models = models
        .iter()
        .map(|m| ModelPattern::parse(m).unwrap())
        .collect();
    p.cloud = cloud;
    p
}

fn tags() -> Vec<u8> {
    serde_json::to_vec(&json!({"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 1, "digest": "a", "details": {}},
        {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 2},
        {"name": "gpt-oss:120b-cloud", "model": "gpt-oss:120b-cloud", "remote_model": "gpt-oss:120b", "remote_host": "https://ollama.com:443"},
        {"name": "sneaky:latest", "model": "sneaky:latest", "remote_host": "https://ollama.com:443"},
        {"name": "llama3.2:1b", "model": "mistral:latest"},
        {"model": "nameless"},
        "not an object",
        {"name": 5}
    ]}))
    .unwrap()
}

fn names(body: &[u8], key: &str, field: &str) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).unwrap();
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e.get(field)
                .or(e.get("model"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn tags_are_filtered() {
    let out = filter(&policy(&["*"], false), Listing::Tags, &tags(), &no_remote).unwrap();
    assert_eq!(
        names(&out, "models", "name"),
        ["llama3.2:latest", "qwen2.5:7b", "llama3.2:1b", "nameless"]
    );
    // An entry whose `name` and `model` differ must pass on both.
    let out = filter(
        &policy(&["llama3.2"], false),
        Listing::Tags,
        &tags(),
        &no_remote,
    )
    .unwrap();
    assert!(!names(&out, "models", "name").contains(&"llama3.2:1b".to_string()));
    let out = filter(&policy(&["*"], true), Listing::Tags, &tags(), &no_remote).unwrap();
    // With cloud allowed the remote entries appear; an entry carrying only `model` is
    // judged on it.
    assert_eq!(
        names(&out, "models", "name"),
        [
            "llama3.2:latest",
            "qwen2.5:7b",
            "gpt-oss:120b-cloud",
            "sneaky:latest",
            "llama3.2:1b",
            "nameless"
        ]
    );
    let out = filter(
        &policy(&["llama3.2"], false),
        Listing::Tags,
        &tags(),
        &no_remote,
    )
    .unwrap();
    assert_eq!(names(&out, "models", "name"), ["llama3.2:latest"]);
    let out = filter(&policy(&[], true), Listing::Tags, &tags(), &no_remote).unwrap();
    assert!(names(&out, "models", "name").is_empty());
    // Other fields are kept.
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v.get("models").is_some());
}

#[test]
fn entries_keep_their_fields() {
    let out = filter(
        &policy(&["llama3.2"], false),
        Listing::Tags,
        &tags(),
        &no_remote,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["models"][0],
        json!({"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 1, "digest": "a", "details": {}})
    );
}

#[test]
fn catalogue_marks_remote_models() {
    let body = serde_json::to_vec(&json!({"models": [{"name": "hidden-remote", "model": "hidden-remote"}, {"name": "local"}]})).unwrap();
    let remote = |n: &str| n == "hidden-remote:latest";
    let out = filter(&policy(&["*"], false), Listing::Tags, &body, &remote).unwrap();
    assert_eq!(names(&out, "models", "name"), ["local"]);
}

#[test]
fn v1_models_are_filtered() {
    let body = serde_json::to_vec(&json!({"object": "list", "data": [
        {"id": "llama3.2:latest", "object": "model", "created": 1, "owned_by": "library"},
        {"id": "mistral:7b", "object": "model"},
        {"id": "kimi-k2:1t-cloud", "object": "model"},
        {"object": "model"}
    ]}))
    .unwrap();
    let out = filter(
        &policy(&["llama*", "kimi*"], false),
        Listing::V1Models,
        &body,
        &no_remote,
    )
    .unwrap();
    assert_eq!(names(&out, "data", "id"), ["llama3.2:latest"]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["object"], "list");
    let out = filter(
        &policy(&["llama*", "kimi*"], true),
        Listing::V1Models,
        &body,
        &no_remote,
    )
    .unwrap();
    assert_eq!(
        names(&out, "data", "id"),
        ["llama3.2:latest", "kimi-k2:1t-cloud"]
    );
}

#[test]
fn ps_is_filtered() {
    let body = serde_json::to_vec(&json!({"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "size_vram": 1, "expires_at": "x"},
        {"name": "secret-model:latest", "model": "secret-model:latest"}
    ]}))
    .unwrap();
    let out = filter(
        &policy(&["llama3.2"], false),
        Listing::Ps,
        &body,
        &no_remote,
    )
    .unwrap();
    assert_eq!(names(&out, "models", "name"), ["llama3.2:latest"]);
}

#[test]
fn bad_listings() {
    let p = policy(&["*"], false);
    assert_eq!(
        filter(&p, Listing::Tags, b"not json", &no_remote),
        Err(ListingError::InvalidJson)
    );
    assert_eq!(
        filter(&p, Listing::Tags, b"", &no_remote),
        Err(ListingError::InvalidJson)
    );
    assert_eq!(
        filter(&p, Listing::Tags, b"[]", &no_remote),
        Err(ListingError::UnexpectedShape)
    );
    assert_eq!(
        filter(&p, Listing::Tags, br#"{"models": {"a": 1}}"#, &no_remote),
        Err(ListingError::UnexpectedShape)
    );
    assert_eq!(
        filter(&p, Listing::V1Models, br#"{"data": "x"}"#, &no_remote),
        Err(ListingError::UnexpectedShape)
    );
    let out = filter(&p, Listing::Tags, br#"{"models": null}"#, &no_remote).unwrap();
    assert_eq!(out, br#"{"models":null}"#);
    let out = filter(&p, Listing::Tags, br#"{}"#, &no_remote).unwrap();
    assert_eq!(out, b"{}");
}

#[test]
fn remote_model_catalogue() {
    assert_eq!(
        remote_models(&tags()),
        ["gpt-oss:120b-cloud", "sneaky:latest"]
    );
    assert!(remote_models(b"garbage").is_empty());
    assert!(remote_models(br#"{"models": [{"name": "x", "remote_host": ""}]}"#).is_empty());
    assert!(remote_models(br#"{"models": [{"name": "x", "remote_host": null}]}"#).is_empty());
    assert_eq!(
        remote_models(br#"{"models": [{"name": "X", "model": "x:latest", "remote_model": "y"}]}"#),
        ["x:latest"]
    );
}

#[test]
fn a_parent_model_the_caller_may_not_see_is_blanked() {
    let body = serde_json::to_vec(&json!({"models": [
        {"name": "tuned:latest", "model": "tuned:latest", "details": {"parent_model": "secret-base:70b", "family": "llama"}},
        {"name": "tuned2:latest", "model": "tuned2:latest", "details": {"parent_model": "llama3.2:latest"}},
        {"name": "tuned3:latest", "model": "tuned3:latest", "details": {"parent_model": "gpt-oss:120b-cloud"}},
        {"name": "tuned4:latest", "model": "tuned4:latest", "details": {"parent_model": ""}},
        {"name": "tuned5:latest", "model": "tuned5:latest", "details": {"parent_model": 7}}
    ]}))
    .unwrap();
    let parents = |p: &Policy| -> Vec<Value> {
        let out = filter(p, Listing::Tags, &body, &no_remote).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["details"]["parent_model"].clone())
            .collect()
    };
    // The entries stay; only a parent outside what the caller may use is blanked, and the
    // other details are kept.
    let p = policy(&["tuned*", "llama3.2", "gpt-oss"], false);
    assert_eq!(
        parents(&p),
        vec![
            json!(""),
            json!("llama3.2:latest"),
            json!(""),
            json!(""),
            json!(7)
        ]
    );
    let out = filter(&p, Listing::Tags, &body, &no_remote).unwrap();
    assert!(String::from_utf8_lossy(&out).contains(r#""family":"llama""#));
    assert!(!String::from_utf8_lossy(&out).contains("secret-base"));
    // With cloud access the cloud parent is shown; `*` shows every parent.
    let p = policy(&["tuned*", "gpt-oss"], true);
    assert_eq!(parents(&p)[2], json!("gpt-oss:120b-cloud"));
    let p = policy(&["*"], true);
    assert_eq!(parents(&p)[0], json!("secret-base:70b"));
}
