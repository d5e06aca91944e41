//! Fuzzes the decision on arbitrary JSON bodies. The first byte picks the route and the
//! policy; the rest is the body. Clamps must be idempotent: a clamped body decided again is
//! allowed and left unchanged.
#![no_main]

use corral_policy::config::Policy;
use corral_policy::decide;
use corral_policy::route::{self, BodyKind, ROUTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let json_routes: Vec<_> = ROUTES.iter().filter(|r| r.body == BodyKind::Json).collect();
    let r = json_routes[usize::from(sel) % json_routes.len()];
    let mut policy = if sel & 0x80 == 0 {
        Policy::builtin_user()
    } else {
        Policy::builtin_admin()
    };
    if sel & 0x40 != 0 {
        policy.tools = false;
        policy.images = false;
        policy.max_num_predict = Some(256);
    }
    let Ok(target) = std::str::from_utf8(r.path.as_bytes()) else {
        return;
    };
    let Ok(m) = route::route(r.methods[0], target) else {
        return;
    };
    // As the gate reads a body: lone surrogate escapes as U+FFFD, the bytes rewritten so.
    let Ok((mut body, as_go)) = corral_policy::inspect::parse_body_as_go(rest) else {
        return;
    };
    let original = as_go.as_deref().unwrap_or(rest);
    let remote = |n: &str| n.starts_with("remote");
    match decide::evaluate(&policy, &m, Some(&mut body), &remote) {
        Ok(v) => {
            if let Some(model) = &v.model {
                assert!(policy.allows_model(model));
            }
            assert_eq!(v.modified, !v.clamps.is_empty() || v.hide_usage);
            if v.modified {
                // What the gate forwards means exactly the decided body.
                let sent = decide::rewritten_body(original, &body).expect("rewritten body");
                let sent: serde_json::Value = serde_json::from_slice(&sent).expect("valid JSON");
                assert_eq!(sent, body, "forwarded body differs from the decided one");
            }
            let again = decide::evaluate(&policy, &m, Some(&mut body), &remote);
            let again = again.unwrap_or_else(|d| panic!("clamped body refused: {}", d.message));
            assert!(!again.modified, "clamps not idempotent: {:?}", again.clamps);
        }
        Err(d) => {
            assert!(matches!(d.status, 400 | 403));
            assert!(d.message.chars().all(|c| !c.is_control()));
        }
    }
});
