use super::*;

#[test]
fn normalisation() {
    let cases = [
        ("llama3.2", "llama3.2:latest"),
        ("Llama3.2", "llama3.2:latest"),
        ("LLAMA3.2:LATEST", "llama3.2:latest"),
        ("llama3.2:", "llama3.2:latest"),
        ("llama3.2:3b", "llama3.2:3b"),
        ("library/llama3.2", "llama3.2:latest"),
        ("registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b"),
        ("registry.ollama.ai/jmorgan/x", "jmorgan/x:latest"),
        ("jmorgan/x:7b", "jmorgan/x:7b"),
        (
            "10.0.0.5:8443/attacker/x",
            "10.0.0.5:8443/attacker/x:latest",
        ),
        ("10.0.0.5:8443/attacker/x:v1", "10.0.0.5:8443/attacker/x:v1"),
        ("10.0.0.5:8443/library/x", "10.0.0.5:8443/library/x:latest"),
        ("hf.co/bartowski/Qwen:Q4_K_M", "hf.co/bartowski/qwen:q4_k_m"),
        ("gpt-oss:120b-cloud", "gpt-oss:120b-cloud"),
        // Ollama's other name for its registry (`manifests-v2` keeps models under it).
        ("ollama.com/library/llama3.2", "llama3.2:latest"),
        ("OLLAMA.COM/Library/Kimi-K2:1T", "kimi-k2:1t"),
        ("https://ollama.com/library/remote", "remote:latest"),
        ("ollama.com/jmorgan/x:7b", "jmorgan/x:7b"),
        ("ollama.comx/library/x", "ollama.comx/library/x:latest"),
        // Ollama cuts a URL scheme off the host part of a three-part name.
        ("https://registry.ollama.ai/library/remote", "remote:latest"),
        // Host `library`, namespace `someone` to Ollama: not the default registry.
        ("library/someone/x", "library/someone/x:latest"),
        (
            "registry.ollama.ai/library/someone/x",
            "library/someone/x:latest",
        ),
        ("HTTP://Registry.Ollama.AI/library/Remote:V1", "remote:v1"),
        ("://registry.ollama.ai/library/remote", "remote:latest"),
        ("x/y://registry.ollama.ai/library/remote", "remote:latest"),
        ("https://hf.co/someone/x:q4", "hf.co/someone/x:q4"),
        // Two parts have no host: nothing is cut (Ollama refuses such a name).
        ("http://x/y", "http://x/y:latest"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize(input), want, "{input}");
    }
}

#[test]
fn split_tag_ignores_registry_ports() {
    assert_eq!(split_tag("a:b"), ("a", Some("b")));
    assert_eq!(split_tag("h:1/a"), ("h:1/a", None));
    assert_eq!(split_tag("h:1/a:t"), ("h:1/a", Some("t")));
    assert_eq!(split_tag("a"), ("a", None));
}

#[test]
fn cloud_names() {
    assert!(is_cloud_name("gpt-oss:120b-cloud"));
    assert!(is_cloud_name("deepseek-v3.1:671b-cloud"));
    assert!(is_cloud_name("qwen3-coder:cloud"));
    assert!(is_cloud_name("Qwen3-Coder:CLOUD"));
    assert!(!is_cloud_name("cloud"));
    assert!(!is_cloud_name("cloud:latest"));
    assert!(!is_cloud_name("llama3.2:cloudy"));
    assert!(!is_cloud_name("llama3.2"));
    assert!(!is_cloud_name("my-cloud/x:latest"));
}

fn p(s: &str) -> ModelPattern {
    ModelPattern::parse(s).unwrap()
}

#[test]
fn untagged_patterns_match_every_tag() {
    let pat = p("llama3.2");
    assert!(pat.matches("llama3.2"));
    assert!(pat.matches("llama3.2:latest"));
    assert!(pat.matches("llama3.2:1b"));
    assert!(pat.matches("registry.ollama.ai/library/llama3.2:3b"));
    assert!(pat.matches("LLAMA3.2"));
    assert!(!pat.matches("llama3.21"));
    assert!(!pat.matches("llama3"));
    assert!(!pat.matches("10.0.0.5:8443/library/llama3.2"));
    assert!(!pat.matches("evil/llama3.2"));
}

#[test]
fn tagged_patterns_match_that_tag() {
    let pat = p("llama3.2:1b");
    assert!(pat.matches("llama3.2:1b"));
    assert!(!pat.matches("llama3.2"));
    assert!(!pat.matches("llama3.2:1b-q8"));
    let latest = p("llama3.2:latest");
    assert!(latest.matches("llama3.2"));
}

#[test]
fn globs() {
    assert!(p("*").matches("anything/at:all"));
    assert!(p("*").matches("10.0.0.5:8443/attacker/x"));
    assert!(p("llama*").matches("llama3.2:1b"));
    assert!(p("llama*").matches("llama2"));
    assert!(!p("llama*").matches("codellama"));
    assert!(p("*llama*").matches("codellama:7b"));
    assert!(p("qwen?").matches("qwen3:8b"));
    assert!(!p("qwen?").matches("qwen25:8b"));
    assert!(p("qwen*:7b").matches("qwen2.5:7b"));
    assert!(!p("qwen*:7b").matches("qwen2.5:14b"));
    assert!(p("*:7b").matches("mistral:7b"));
    assert!(p("hf.co/bartowski/*").matches("hf.co/bartowski/x:q4"));
    assert!(!p("hf.co/bartowski/*").matches("hf.co/other/x:q4"));
    assert!(p("Library/Mistral").matches("mistral:7b"));
    assert!(p("a*b*c*d").matches("axxbxxcxxd:latest"));
    assert!(!p("a*b*c*d").matches("axxbxxcxxdx:latest"));
    assert!(p("a*b*c*d:*").matches("axxbxxcxxd:latest"));
    assert!(!p("gpt-oss:*-cloud").matches("gpt-oss:20b"));
    assert!(p("gpt-oss:*-cloud").matches("gpt-oss:120b-cloud"));
}

#[test]
fn patterns_for_library_models_never_reach_another_registry() {
    // Ollama reads `llama3.2:8443/attacker/x` as host `llama3.2:8443`, namespace `attacker`.
    for pat in [
        "llama3.2",
        "llama3.2:*",
        "llama*",
        "*llama*",
        "qwen*",
        "*:latest",
        "*/*",
        "l?ama3.2",
    ] {
        let pat = p(pat);
        for name in [
            "llama3.2:8443/attacker/leak_model_0",
            "llama3.2:x/evil/payload",
            "llama3.2.evil.com/attacker/llama3.2",
            "qwen.example.com/x/y:latest",
            "qwen:8443/a/b",
            "10.0.0.5:8443/library/llama3.2",
        ] {
            assert!(!pat.matches(name), "{pat} matched {name}");
        }
    }
    // A pattern that names a host reaches that host's models, and `*` reaches everything.
    assert!(p("hf.co/*").matches("hf.co/bartowski/qwen:q4_k_m"));
    assert!(p("hf.co/bartowski/*").matches("hf.co/bartowski/qwen:q4_k_m"));
    assert!(!p("hf.co/*").matches("hf.co.evil.com/bartowski/qwen"));
    assert!(p("10.0.0.5:8443/*").matches("10.0.0.5:8443/attacker/x"));
    assert!(p("localhost/*").matches("localhost/ns/x:1"));
    assert!(p("*/*/*").matches("10.0.0.5:8443/attacker/x"));
    assert!(p("*").matches("llama3.2:8443/attacker/leak_model_0"));
    // Namespaces on the default registry are names like any other.
    assert!(p("jmorgan/*").matches("registry.ollama.ai/jmorgan/x:7b"));
    assert!(p("*llama*").matches("someone/codellama:7b"));
}

#[test]
fn a_pattern_naming_the_default_registry_or_library_stays_there() {
    for lib in [
        "library/*",
        "Library/*",
        "registry.ollama.ai/library/*",
        "https://registry.ollama.ai/library/*",
    ] {
        let pat = p(lib);
        assert!(pat.matches("llama3.2"), "{lib}");
        assert!(pat.matches("registry.ollama.ai/library/qwen3:8b"), "{lib}");
        for other in [
            "someone/model",
            "registry.ollama.ai/someone/model:7b",
            "hf.co/attacker/evil",
            "10.0.0.5:8443/team/x",
            "llama3.2:8443/attacker/x",
        ] {
            assert!(!pat.matches(other), "{lib} matched {other}");
        }
    }
    let pat = p("library/llama*");
    assert!(pat.matches("llama3.2:1b"));
    assert!(!pat.matches("llama-fan/evil"));
    let reg = p("registry.ollama.ai/*");
    assert!(reg.matches("llama3.2"));
    assert!(reg.matches("someone/model:7b"));
    assert!(!reg.matches("hf.co/attacker/evil"));
    assert!(!reg.matches("10.0.0.5:8443/team/x"));
    assert!(p("registry.ollama.ai/library/*:7b").matches("mistral:7b"));
    assert!(!p("registry.ollama.ai/library/*:7b").matches("x/mistral:7b"));
    // `library/someone/x` is host `library` to Ollama, not the user namespace `someone`.
    assert!(!p("someone/*").matches("library/someone/x"));
    assert!(!p("*llama*").matches("library/someone/llama3"));
    assert!(!p("library/*").matches("library/someone/x"));
    assert!(p("library/someone/*").matches("library/someone/x:1b"));
    assert!(!p("library/someone/*").matches("someone/x:1b"));
    // `*` alone is still everything.
    assert!(p("*").matches("hf.co/attacker/evil"));
}

#[test]
fn the_tag_is_matched_as_a_tag() {
    assert!(p("qwen*:7b").matches("qwen2.5:7b"));
    assert!(!p("qwen*:7b").matches("qwen2.5:7b-instruct"));
    assert!(!p("*:7b").matches("x:8443/a/b:7b"));
    assert!(p("llama3.2:*").matches("llama3.2"));
    assert!(!p("llama3.2:*").matches("llama3.2.1:latest"));
    assert_eq!(p("gpt-oss:120b-cloud").literal_tag(), Some("120b-cloud"));
    assert_eq!(p("gpt-oss:*-cloud").literal_tag(), None);
    assert_eq!(p("gpt-oss").literal_tag(), None);
}

#[test]
fn pathological_glob_is_fast() {
    let pat = p(&format!("{}b", "*a".repeat(100)));
    let name = "a".repeat(500);
    let start = std::time::Instant::now();
    assert!(!pat.matches(&name));
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn bad_patterns() {
    assert_eq!(ModelPattern::parse(""), Err(PatternError::Empty));
    assert_eq!(ModelPattern::parse("a b"), Err(PatternError::BadChar));
    assert_eq!(ModelPattern::parse("a\n"), Err(PatternError::BadChar));
    assert_eq!(
        ModelPattern::parse(&"a".repeat(513)),
        Err(PatternError::TooLong)
    );
    assert_eq!(p("Llama").as_str(), "Llama");
    assert_eq!(p("Llama").to_string(), "Llama");
    for bad in ["[abc]", "llama{3,4}", "ünï", "a\\b", "x,y", "a@b"] {
        assert!(
            matches!(ModelPattern::parse(bad), Err(PatternError::NotNameChar(_))),
            "{bad}"
        );
    }
    for never in [
        "llama3.2:",
        "a//b",
        ":latest",
        "/x",
        "x/",
        "library/",
        "registry.ollama.ai/",
    ] {
        assert_eq!(
            ModelPattern::parse(never),
            Err(PatternError::EmptyPart),
            "{never}"
        );
    }
}

#[test]
fn the_borrowing_fast_path_agrees_with_the_full_normalisation() {
    let names = [
        "llama3.2",
        "llama3.2:latest",
        "Llama3.2:Latest",
        "llama3.2:",
        "library/llama3.2:8b",
        "registry.ollama.ai/library/llama3.2:8b",
        "Registry.Ollama.AI/library/llama3.2",
        "registry.ollama.ai/someone/model:q4",
        "10.0.0.5:8443/attacker/x",
        "10.0.0.5:8443/attacker/x:tag",
        "gpt-oss:120b-cloud",
        "ünïcødé:tag",
        "ÜNÏ:tag",
        "",
        ":",
        "a/b/c:d",
        "library/",
        "https://registry.ollama.ai/library/x:latest",
        "http://x/y:latest",
        "library/someone/x",
        "library/someone/x:latest",
        "Library/Someone/X",
        "ollama.com/library/x",
        "Ollama.Com/someone/x:q4",
    ];
    for n in names {
        assert_eq!(normalized(n), normalize_owned(n), "{n:?}");
        let once = normalize(n);
        assert!(
            matches!(normalized(&once), Cow::Borrowed(_)) || once.is_empty(),
            "{once:?}"
        );
    }
}

/// The normalisation as first written (lower-case the whole name, strip the prefixes, then
/// add `:latest`), kept as the reference for the one-allocation version.
fn reference_normalize(name: &str) -> String {
    let mut n = without_scheme(name).to_ascii_lowercase();
    for registry in ["registry.ollama.ai/", "ollama.com/"] {
        if let Some(rest) = n.strip_prefix(registry) {
            n = rest.to_string();
        }
    }
    if let Some(rest) = n.strip_prefix(DEFAULT_NAMESPACE) {
        if !rest.contains('/') {
            n = rest.to_string();
        }
    }
    let (base, tag) = split_tag(&n);
    match tag {
        Some(t) if !t.is_empty() => n,
        _ => format!("{base}:latest"),
    }
}

#[test]
fn normalisation_matches_the_reference_on_every_combination_of_parts() {
    let registries = [
        "",
        "registry.ollama.ai/",
        "REGISTRY.Ollama.ai/",
        "registry.ollama.ai",
        "10.0.0.5:8443/",
        "hf.co/",
        "registry.ollama.aix/",
        "ollama.com/",
        "Ollama.COM/",
    ];
    let namespaces = [
        "",
        "library/",
        "Library/",
        "LIBRARY",
        "someone/",
        "library//",
    ];
    let bases = ["llama3.2", "Qwen", "", "a:b", "ünï", "x/", ":"];
    let tags = ["", ":", ":latest", ":Q4_K_M", "::", ":a/b", ":cloud"];
    let mut seen = 0;
    for r in registries {
        for ns in namespaces {
            for b in bases {
                for t in tags {
                    let name = format!("{r}{ns}{b}{t}");
                    assert_eq!(normalize(&name), reference_normalize(&name), "{name:?}");
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, 9 * 6 * 7 * 7);
}

#[test]
fn a_url_scheme_before_the_registry_host_is_the_same_model() {
    let pat = p("llama3.2");
    assert!(pat.matches("https://registry.ollama.ai/library/llama3.2:1b"));
    assert!(!pat.matches("https://10.0.0.5:8443/library/llama3.2"));
    let hf = p("https://hf.co/someone/*");
    assert!(hf.matches("hf.co/someone/x"));
    assert!(hf.matches("http://hf.co/someone/x:q4"));
}

#[test]
fn digest_references_are_recognised_in_every_form_ollama_reads() {
    let d = "65a329e9977c2b27524cfe73dd9b2534101c671b506649a49c6385f0253a8295";
    let short = &d[..12];
    for name in [
        d.to_string(),
        short.to_string(),
        d.to_ascii_uppercase(),
        format!("sha256-{d}"),
        format!("sha256:{d}"),
        format!("SHA256-{short}"),
        format!("sha256:{short}"),
        // A runner in front of the digest (`ollama:sha256-...`, `mlx:...`).
        format!("ollama:sha256-{d}"),
        format!("mlx:{short}"),
        // The default registry, `library` and `latest` around a digest name it too.
        format!("{short}:latest"),
        format!("{short}:LATEST"),
        format!("library/{short}"),
        format!("registry.ollama.ai/library/{short}:latest"),
        format!("ollama.com/library/sha256-{d}"),
        format!("https://ollama.com/library/{short}"),
        // Ollama takes an explicit `:local` (or `:cloud`) source off first.
        format!("{short}:local"),
        format!("sha256-{short}:Cloud"),
    ] {
        assert!(is_digest_reference(&name), "{name}");
    }
    for name in [
        "llama3.2",
        "llama3.2:latest",
        "qwen3:8b",
        // Too short for a digest prefix (Ollama wants 12 to 64 hex digits).
        "deadbeef",
        "cafe:latest",
        &d[..11],
        "gpt-oss:120b-cloud",
        "10.0.0.5:8443/attacker/x",
        // Not the default registry or namespace: a name, not a digest.
        &format!("someone/{short}"),
        &format!("hf.co/library/{short}"),
        &format!("{short}:v1"),
        &format!("{d}0"),
        "sha256-",
        "sha256-xyz0123456789ab",
    ] {
        assert!(!is_digest_reference(name), "{name}");
    }
}

#[test]
fn ollama_com_is_the_default_registry_too() {
    // Ollama reads `ollama.com/<namespace>/<model>` as the same model as
    // `registry.ollama.ai/<namespace>/<model>`: a pattern for one matches the other, and a
    // pattern naming either stays on the default registry.
    assert!(p("llama3.2").matches("ollama.com/library/llama3.2:1b"));
    assert!(p("kimi*").matches("https://Ollama.com/library/kimi-k2:1t"));
    assert!(!p("qwen*").matches("ollama.com/someone/qwen"));
    for pat in ["ollama.com/*", "registry.ollama.ai/*"] {
        let pat = p(pat);
        assert!(pat.matches("llama3.2"), "{pat}");
        assert!(pat.matches("ollama.com/someone/x"), "{pat}");
        assert!(pat.matches("registry.ollama.ai/someone/x"), "{pat}");
        assert!(!pat.matches("hf.co/a/b"), "{pat}");
    }
    assert!(is_cloud_name("ollama.com/library/gpt-oss:120b-cloud"));
}
