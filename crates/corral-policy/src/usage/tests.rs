use super::*;

fn scan(format: ResponseFormat, body: &[u8]) -> Usage {
    let mut t = UsageTap::new(format);
    t.feed(body);
    t.finish()
}

fn usage(p: u64, c: u64) -> Usage {
    Usage {
        prompt_tokens: Some(p),
        completion_tokens: Some(c),
    }
}

const NDJSON: &[u8] = b"{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n\
{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":1,\"load_duration\":2,\"prompt_eval_count\":26,\"prompt_eval_duration\":3,\"eval_count\":298,\"eval_duration\":4}\n";

const SSE: &[u8] = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\n\n\
data: [DONE]\n\n";

const ANTHROPIC_SSE: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

#[test]
fn ollama_ndjson() {
    assert_eq!(scan(ResponseFormat::Ndjson, NDJSON), usage(26, 298));
}

#[test]
fn openai_sse() {
    assert_eq!(scan(ResponseFormat::Sse, SSE), usage(12, 34));
}

#[test]
fn anthropic_sse_takes_the_last_values() {
    assert_eq!(scan(ResponseFormat::Sse, ANTHROPIC_SSE), usage(25, 15));
}

#[test]
fn non_streaming_json_bodies() {
    let pretty = b"{\n  \"id\": \"x\",\n  \"choices\": [],\n  \"usage\": {\n    \"prompt_tokens\" :\t 7,\n    \"completion_tokens\":   9\n  }\n}";
    assert_eq!(scan(ResponseFormat::Json, pretty), usage(7, 9));
    let responses = br#"{"id":"resp","output":[],"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":0},"output_tokens":4,"total_tokens":7}}"#;
    assert_eq!(scan(ResponseFormat::Json, responses), usage(3, 4));
    let embed =
        br#"{"model":"m","embeddings":[[0.1,0.2]],"total_duration":1,"prompt_eval_count":8}"#;
    assert_eq!(
        scan(ResponseFormat::Json, embed),
        Usage {
            prompt_tokens: Some(8),
            completion_tokens: None
        }
    );
}

#[test]
fn every_split_point_gives_the_same_answer() {
    for body in [NDJSON, SSE, ANTHROPIC_SSE] {
        let whole = scan(ResponseFormat::Sse, body);
        for cut in 0..=body.len() {
            let mut t = UsageTap::new(ResponseFormat::Sse);
            t.feed(&body[..cut]);
            t.feed(&body[cut..]);
            assert_eq!(t.finish(), whole, "cut at {cut}");
        }
        let mut t = UsageTap::new(ResponseFormat::Sse);
        for b in body {
            t.feed(std::slice::from_ref(b));
        }
        assert_eq!(t.finish(), whole);
    }
}

#[test]
fn counter_names_inside_strings_are_not_counted() {
    let body = br#"{"message":{"content":"\"eval_count\": 999999, \"prompt_tokens\":5"},"note":"eval_count","x":"prompt_eval_count"}"#;
    assert_eq!(scan(ResponseFormat::Json, body), Usage::default());
    // An escaped quote right before a counter-named key cannot forge the key.
    let body = br#"{"x\"eval_count": 5}"#;
    assert_eq!(scan(ResponseFormat::Json, body), Usage::default());
    // A string with an escaped backslash ends normally; the next key counts.
    let body = br#"{"c":"a\\","eval_count":5}"#;
    assert_eq!(scan(ResponseFormat::Json, body).completion_tokens, Some(5));
}

#[test]
fn model_generated_keys_are_overridden_by_the_final_totals() {
    let body = b"{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":{\"eval_count\":999999}}}]},\"done\":false}\n{\"done\":true,\"prompt_eval_count\":5,\"eval_count\":6}\n";
    assert_eq!(scan(ResponseFormat::Ndjson, body), usage(5, 6));
}

#[test]
fn non_counts_are_ignored() {
    for body in [
        &br#"{"eval_count":-5}"#[..],
        br#"{"eval_count":1.5}"#,
        br#"{"eval_count":1e3}"#,
        br#"{"eval_count":"7"}"#,
        br#"{"eval_count":null}"#,
        br#"{"eval_count":99999999999999999999999}"#,
        br#"{"my_eval_count":4}"#,
        br#"{"eval_counts":4}"#,
        br#"["eval_count",4]"#,
    ] {
        assert_eq!(
            scan(ResponseFormat::Json, body).completion_tokens,
            None,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn a_number_at_the_end_of_the_body_counts() {
    assert_eq!(
        scan(ResponseFormat::Json, br#"{"eval_count":12"#).completion_tokens,
        Some(12)
    );
}

#[test]
fn broken_lines_do_not_poison_later_lines() {
    let body = b": keep-alive comment with a \" quote\n{\"eval_count\":3}\n";
    assert_eq!(scan(ResponseFormat::Sse, body).completion_tokens, Some(3));
    let body = b"{\"unterminated\n{\"prompt_eval_count\":4}\n";
    assert_eq!(scan(ResponseFormat::Ndjson, body).prompt_tokens, Some(4));
}

#[test]
fn huge_bodies_in_small_chunks_use_constant_memory() {
    let mut t = UsageTap::new(ResponseFormat::Ndjson);
    let line = b"{\"message\":{\"content\":\"lorem ipsum dolor sit amet \\\" eval_count\"},\"done\":false}\n";
    let size_before = std::mem::size_of_val(&t);
    for _ in 0..200_000 {
        t.feed(line);
    }
    let long_key = format!("{{\"{}\":1}}\n", "k".repeat(100_000));
    t.feed(long_key.as_bytes());
    t.feed(b"{\"done\":true,\"prompt_eval_count\":11,\"eval_count\":");
    t.feed(b"22}\n");
    assert_eq!(t.finish(), usage(11, 22));
    assert_eq!(std::mem::size_of_val(&t), size_before);
    assert_eq!(t.format(), ResponseFormat::Ndjson);
}

#[test]
fn empty_and_binary_input() {
    assert_eq!(scan(ResponseFormat::Json, b""), Usage::default());
    let noise: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let _ = scan(ResponseFormat::Json, &noise);
}

/// The vectorised fast path in `feed` must agree with stepping byte by byte, whatever the input
/// and wherever chunks split it.
#[test]
fn fast_path_agrees_with_the_byte_stepper() {
    const ALPHABET: &[&[u8]] = &[
        b"\"",
        b"\\",
        b"\n",
        b":",
        b" ",
        b"1",
        b"23",
        b".",
        b"e",
        b"{",
        b"}",
        b"x",
        b"eval_count",
        b"prompt_eval_count",
        b"usage",
        b"completion_tokens",
        b"prompt_tokens",
        b"output_tokens",
        b"input_tokens",
        b"aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "\u{e9}".as_bytes(),
        b"\xff",
    ];
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = (next() % 120) as usize;
        let mut body = Vec::new();
        for _ in 0..len {
            body.extend_from_slice(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
        }
        let mut slow = UsageTap::new(ResponseFormat::Ndjson);
        for &b in &body {
            slow.step(b);
        }
        let mut fast = UsageTap::new(ResponseFormat::Ndjson);
        let mut rest = body.as_slice();
        while !rest.is_empty() {
            // Mostly small pieces; sometimes all that is left, so long runs meet the
            // vectorised search whole.
            let n = match next() % 4 {
                0 => rest.len(),
                _ => (next() % 7) as usize + 1,
            }
            .min(rest.len());
            fast.feed(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(
            fast.finish(),
            slow.finish(),
            "{:?}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            fast.state,
            slow.state,
            "{:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// The word-at-a-time search finds exactly the first `"`, `\` or newline, whatever the other
/// bytes are (high bytes and bytes one off the targets included) and wherever it lies.
#[test]
fn next_special_finds_exactly_the_first_stop_byte() {
    const BYTES: &[u8] = b"\"\\\n!#[]\x0b\x0c\x21\x5b\x5d\x00\x7f\x80\xa2\xdc\x8a\xffa0 ";
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let len = (next() % 80) as usize;
        // Stops are rare in most inputs, so some land past the 32-byte word scan.
        let stop_odds = 1 + next() % 40;
        let s: Vec<u8> = (0..len)
            .map(|_| {
                let b = BYTES[(next() % BYTES.len() as u64) as usize];
                if matches!(b, b'"' | b'\\' | b'\n') && !next().is_multiple_of(stop_odds) {
                    b'x'
                } else {
                    b
                }
            })
            .collect();
        let want = s.iter().position(|&b| matches!(b, b'"' | b'\\' | b'\n'));
        assert_eq!(super::next_special(&s), want, "{s:?}");
    }
}

/// A fixed-seed xorshift generator: the random tests here see the same inputs on every run.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// What `verdict` says of `body` fed whole, after asserting that every split of it into two
/// pieces, and feeding it byte by byte, says the same.
fn judged(body: &[u8], verdict: fn(&UsageTap) -> bool) -> bool {
    let mut whole = UsageTap::new(ResponseFormat::Ndjson);
    whole.feed(body);
    for cut in 0..=body.len() {
        let mut t = UsageTap::new(ResponseFormat::Ndjson);
        t.feed(&body[..cut]);
        t.feed(&body[cut..]);
        assert_eq!(verdict(&t), verdict(&whole), "cut at {cut}");
    }
    let mut bytes = UsageTap::new(ResponseFormat::Ndjson);
    for b in body {
        bytes.feed(std::slice::from_ref(b));
    }
    assert_eq!(verdict(&bytes), verdict(&whole));
    verdict(&whole)
}

fn reports_error(body: &[u8]) -> bool {
    judged(body, UsageTap::reported_error)
}

#[test]
fn errors_the_upstream_reports_in_a_successful_answer_are_noticed() {
    // Ollama ends a failed generation or pull with an error line.
    let mut ollama = NDJSON[..NDJSON.len() / 2].to_vec();
    ollama
        .extend_from_slice(b"\n{\"error\":\"an error was encountered while running the model\"}\n");
    assert!(reports_error(&ollama));
    assert!(reports_error(
        b"{\"status\":\"pulling manifest\"}\n{\"error\":\"pull model manifest: file does not exist\"}"
    ));
    assert!(reports_error(b"  { \"error\" : {\"message\":\"x\"}}\n"));
    // OpenAI-style event.
    let mut openai = SSE[..SSE.len() - "data: [DONE]\n\n".len()].to_vec();
    openai.extend_from_slice(
        b"data: {\"error\":{\"message\":\"model runner crashed\",\"type\":\"api_error\"}}\n\n",
    );
    assert!(reports_error(&openai));
    assert!(reports_error(b"data:{\"error\":\"x\"}\n\n"));
    // Anthropic-style event, with or without a newline at the end of the body.
    assert!(reports_error(
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}\n\n"
    ));
    assert!(reports_error(b"event: error\r\n"));
    assert!(reports_error(b"event:error"));
}

#[test]
fn the_word_error_elsewhere_is_no_error() {
    for body in [NDJSON, SSE, ANTHROPIC_SSE] {
        assert!(!reports_error(body));
    }
    let quiet: &[&[u8]] = &[
        // The Responses API's successful answer carries `"error": null`.
        br#"{"id":"resp","status":"completed","error":null,"output":[]}"#,
        b"{\"error\" :  null}\n",
        // Not the first key of the line's object.
        b"{\"model\":\"m\",\"error\":\"x\"}\n",
        // Nested: tool-call arguments, generated text.
        br#"{"message":{"tool_calls":[{"function":{"name":"f","arguments":{"error":"boom"}}}]},"done":false}"#,
        b"{\"message\":{\"content\":\"{\\\"error\\\":\\\"x\\\"}\"}}\n",
        b"data: {\"choices\":[{\"delta\":{\"content\":\"error\"}}]}\n\n",
        // Keys that only start or end like it; other events.
        b"{\"errors\":[\"x\"]}\n{\"an_error\":1}\n{\"err\":1}\n",
        b"event: errors\ndata: {}\n\nevent: message_error\n\nevent: error_count\n\n",
        b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"error\"}\n\n",
        // Comments and other fields.
        b": error\n\nid: error\n\ndata: error\n\n",
    ];
    for body in quiet {
        assert!(!reports_error(body), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn an_error_line_leaves_the_counts_alone() {
    let mut body = NDJSON.to_vec();
    body.extend_from_slice(b"{\"error\":\"x\",\"eval_count\":5}\n");
    let mut t = UsageTap::new(ResponseFormat::Ndjson);
    t.feed(&body);
    assert!(t.reported_error());
    assert_eq!(t.finish(), usage(26, 5));
}

fn ends(body: &[u8]) -> bool {
    judged(body, UsageTap::saw_end)
}

#[test]
fn the_end_markers_of_each_format_are_seen() {
    assert!(ends(NDJSON));
    assert!(ends(SSE));
    assert!(ends(ANTHROPIC_SSE));
    assert!(ends(
        b"event: response.output_text.delta\ndata: {\"delta\":\"x\"}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\"}\n\n"
    ));
    assert!(ends(b"event: response.incomplete\r\ndata: {}\r\n\r\n"));
    assert!(ends(b"{\"done\" : true}"));
    assert!(ends(b"data:[DONE]"));
    assert!(ends(b"data: [DONE]  \r\n"));
    assert!(ends(b"event:message_stop"));
    // Servers that send events without `event:` lines: the `type` that opens the object.
    assert!(ends(b"data: {\"type\":\"message_stop\"}\n\n"));
    assert!(ends(
        b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\ndata: { \"type\" : \"response.completed\", \"response\":{}}\n\n"
    ));
}

#[test]
fn a_stream_cut_short_has_no_end_marker() {
    for body in [NDJSON, SSE, ANTHROPIC_SSE] {
        // Everything but the last line or event.
        let text = std::str::from_utf8(body).unwrap().trim_end();
        let cut = text.rfind("\n\n").or_else(|| text.rfind('\n')).unwrap();
        assert!(!ends(&body[..cut]), "{}", &text[..cut]);
    }
    let quiet: &[&[u8]] = &[
        b"{\"done\":false}\n{\"message\":{\"content\":\"done\"},\"done\":false}\n",
        b"{\"status\":\"done\"}\n{\"x\":\"\\\"done\\\": true\"}\n",
        b"data: [DONE]x\n\ndata: [DON\n\ndata: {\"[DONE]\":1}\n\n",
        b"event: message_stopped\n\nevent: response.completed.partial\n\n: [DONE]\n\n",
        // `type` that is not the first key, or nested, or not a string.
        b"data: {\"x\":1,\"type\":\"message_stop\"}\n\n",
        b"data: {\"response\":{\"type\":\"response.completed\"}}\n\n",
        b"data: {\"type\":[\"message_stop\"]}\n\ndata: {\"type\":\"message_stop_\"}\n\n",
    ];
    for body in quiet {
        assert!(!ends(body), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_failed_responses_stream_is_an_error() {
    assert!(reports_error(
        b"event: response.created\ndata: {}\n\nevent: response.failed\ndata: {\"type\":\"response.failed\"}\n\n"
    ));
    assert!(!reports_error(b"event: response.failed_over\n\n"));
    assert!(reports_error(
        b"data: {\"type\":\"response.failed\",\"response\":{}}\n\n"
    ));
    assert!(reports_error(
        b"data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}\n\n"
    ));
    assert!(!reports_error(
        b"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"error\"}}\n\n"
    ));
}

#[test]
fn events_are_the_lines_that_open_an_object() {
    let count = |format, body: &[u8]| {
        let mut t = UsageTap::new(format);
        t.feed(body);
        t.events()
    };
    assert_eq!(count(ResponseFormat::Ndjson, NDJSON), 2);
    // The usage chunk and the two content events; not `[DONE]`.
    assert_eq!(count(ResponseFormat::Sse, SSE), 2);
    // `event:` lines are not counted, their `data:` lines are.
    assert_eq!(count(ResponseFormat::Sse, ANTHROPIC_SSE), 4);
    // A brace inside a line is no event.
    assert_eq!(
        count(ResponseFormat::Ndjson, b"x {\"a\":1}\n  {\"b\":{}}\n"),
        1
    );
}

#[test]
fn a_stream_cut_before_its_counts_is_charged_per_event() {
    // The first content lines of an Ollama stream, without its final object.
    let cut: &[u8] = b"{\"message\":{\"content\":\"Hello\"},\"done\":false}\n\
{\"message\":{\"content\":\" there\"},\"done\":false}\n\
{\"message\":{\"content\":\" you\"},\"done\":false}\n";
    let mut t = UsageTap::new(ResponseFormat::Ndjson);
    t.feed(cut);
    assert!(!t.saw_end());
    assert_eq!(t.finish(), Usage::default());
    assert_eq!(t.finish().tokens_to_charge(Some(t.events()), 0), 3);
    // A complete answer is charged its counts.
    assert_eq!(
        scan(ResponseFormat::Ndjson, NDJSON).tokens_to_charge(None, 0),
        26 + 298
    );
    // Counts seen before the cut (Anthropic's `message_start`) stand; the completion is at
    // least the events.
    let anthropic_cut = ANTHROPIC_SSE.split_at(ANTHROPIC_SSE.len() / 2).0;
    let mut t = UsageTap::new(ResponseFormat::Sse);
    t.feed(anthropic_cut);
    assert_eq!(t.finish(), usage(25, 1));
    assert_eq!(
        t.finish().tokens_to_charge(Some(t.events()), 0),
        25 + t.events()
    );
    assert_eq!(Usage::default().tokens_to_charge(None, 0), 0);
}

#[test]
fn a_missing_prompt_count_is_estimated_from_the_body() {
    assert_eq!(prompt_estimate(0), 0);
    assert_eq!(prompt_estimate(1), 1);
    assert_eq!(prompt_estimate(4000), 1000);
    assert_eq!(prompt_estimate(4001), 1001);
    // The estimate stands in only where the upstream gave no prompt count.
    assert_eq!(Usage::default().tokens_to_charge(None, 50), 50);
    assert_eq!(Usage::default().tokens_to_charge(Some(7), 50), 57);
    assert_eq!(usage(26, 3).tokens_to_charge(None, 50), 29);
}
