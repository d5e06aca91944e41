//! Fuzzes request routing: `METHOD SP TARGET` in, a route or a refusal out, never a panic.
//! Every accepted target must be canonical and match its route's pattern exactly (apart from
//! a query its route accepts, which is not forwarded).
#![no_main]

use corral_policy::path;
use corral_policy::route::{self, RouteError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (method, target) = s.split_once(' ').unwrap_or(("GET", s));
    match route::route(method, target) {
        Ok(m) => {
            // The whole target, or the path and a query its route accepts exactly.
            if m.path != target {
                let query = target
                    .strip_prefix(m.path)
                    .and_then(|q| q.strip_prefix('?'));
                assert!(query.is_some_and(|q| route::ACCEPTED_QUERIES.contains(&(m.route.name, q))));
            }
            let target = m.path;
            assert_eq!(path::check(target), Ok(target));
            assert!(m.route.methods.contains(&method));
            assert!(!target.contains("..") || target.split('/').all(|seg| seg != ".."));
            assert!(!target.contains(['?', '#', '\\', ';']));
            assert!(target.is_ascii());
            match m.param {
                None => assert_eq!(target, m.route.path),
                Some(p) => {
                    let prefix = &m.route.path[..m.route.path.find('{').unwrap_or(0)];
                    assert_eq!(target, format!("{prefix}{p}"));
                    assert!(!p.contains('/'));
                    if m.route.name == "api.blobs" {
                        assert!(route::is_sha256_digest(p));
                    }
                }
            }
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 404 | 405 | 414));
            let msg = e.to_string();
            assert!(!msg.is_empty());
            if let RouteError::MethodNotAllowed { allow } = e {
                assert!(!allow.contains(&method));
            }
        }
    }
    let _ = route::dialect_for_path(s);
});
