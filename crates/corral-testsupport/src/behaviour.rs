//! Scriptable behaviour of the mock: global knobs plus per-request overrides keyed on the model
//! name (the gate strips unknown headers, so a header cannot carry the script).

use std::time::Duration;

/// How the mock answers. The global value is set on the builder (or by the binary's flags);
/// [`MockBehaviour::for_model`] layers the model-name table of the crate docs on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockBehaviour {
    /// Pause between two streamed chunks (the first chunk is sent at once).
    pub chunk_delay: Duration,
    /// Pause before the response headers (a cold model load).
    pub header_delay: Duration,
    /// Number of content chunks in a streamed answer (before the final `done` object).
    pub chunks: usize,
    /// Answer every request with this status and an error body in the route's dialect.
    pub error_status: Option<u16>,
    /// Abort the connection after this many content chunks.
    pub close_after: Option<usize>,
    /// Stop sending (without closing) after this many content chunks, until the client leaves.
    pub stall_after: Option<usize>,
    /// After this many content chunks, end the stream in good order with an error in it (an
    /// NDJSON `{"error":...}` line, an SSE error event), as a server whose generation failed
    /// after the success status went out does.
    pub fail_after: Option<usize>,
    /// After this many content chunks, end the stream in good order but without the rest of
    /// the answer (no final `done` object, `[DONE]`, `message_stop`...): a generation cut short.
    pub end_after: Option<usize>,
    /// Stream content chunks until the client goes away (bounded by [`ENDLESS_CAP`]).
    pub endless: bool,
    /// Chunk delay used for `slow*` models.
    pub slow_delay: Duration,
    /// Header delay used for `cold*` models.
    pub cold_delay: Duration,
}

/// Upper bound on the chunks of an "endless" stream, so a forgotten stream still ends.
pub const ENDLESS_CAP: usize = 100_000;

/// Number of content chunks of a `long*` model's stream.
pub const LONG_CHUNKS: usize = 500;

/// Number of content chunks of a `slow*` model's stream.
pub const SLOW_CHUNKS: usize = 10;

impl Default for MockBehaviour {
    fn default() -> Self {
        Self {
            chunk_delay: Duration::ZERO,
            header_delay: Duration::ZERO,
            chunks: 4,
            error_status: None,
            close_after: None,
            stall_after: None,
            fail_after: None,
            end_after: None,
            endless: false,
            slow_delay: Duration::from_millis(150),
            cold_delay: Duration::from_millis(1500),
        }
    }
}

impl MockBehaviour {
    /// The behaviour for one request naming `model` (see the table in the crate docs).
    pub fn for_model(&self, model: Option<&str>) -> MockBehaviour {
        let mut b = self.clone();
        let Some(model) = model else { return b };
        let base = model.rsplit('/').next().unwrap_or(model);
        let base = base.split(':').next().unwrap_or(base);
        if base.starts_with("slow") {
            b.chunk_delay = b.slow_delay;
            b.chunks = b.chunks.max(SLOW_CHUNKS);
        } else if base.starts_with("cold") {
            b.header_delay = b.cold_delay;
        } else if base.starts_with("stall") {
            b.stall_after = Some(1);
        } else if base.starts_with("close") {
            b.close_after = Some(2);
        } else if base.starts_with("failing") {
            b.fail_after = Some(2);
        } else if base.starts_with("truncated") {
            b.end_after = Some(2);
        } else if base.starts_with("endless") {
            b.endless = true;
            b.chunk_delay = b.chunk_delay.max(Duration::from_millis(20));
        } else if base.starts_with("long") {
            b.chunks = LONG_CHUNKS;
        } else if let Some(code) = base.strip_prefix("error") {
            if let Ok(code) = code.parse::<u16>() {
                if (400..=599).contains(&code) {
                    b.error_status = Some(code);
                }
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_select_behaviour() {
        let g = MockBehaviour::default();
        assert_eq!(g.for_model(None), g);
        assert_eq!(g.for_model(Some("llama3.2:latest")), g);
        let slow = g.for_model(Some("slow:latest"));
        assert_eq!(slow.chunk_delay, g.slow_delay);
        assert_eq!(slow.chunks, SLOW_CHUNKS);
        assert_eq!(
            g.for_model(Some("cold")).header_delay,
            Duration::from_millis(1500)
        );
        assert_eq!(g.for_model(Some("stall:1b")).stall_after, Some(1));
        assert_eq!(g.for_model(Some("close")).close_after, Some(2));
        assert_eq!(g.for_model(Some("failing")).fail_after, Some(2));
        assert_eq!(g.for_model(Some("truncated")).end_after, Some(2));
        assert!(g.for_model(Some("endless")).endless);
        assert_eq!(g.for_model(Some("long:7b")).chunks, LONG_CHUNKS);
        assert_eq!(g.for_model(Some("error500")).error_status, Some(500));
        assert_eq!(g.for_model(Some("error404:x")).error_status, Some(404));
        assert_eq!(g.for_model(Some("error200")).error_status, None);
        assert_eq!(g.for_model(Some("errorx")).error_status, None);
        assert_eq!(
            g.for_model(Some("registry.example:8443/ns/slow:1")).chunks,
            SLOW_CHUNKS
        );
    }
}
