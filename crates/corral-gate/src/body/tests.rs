use super::*;
use http::HeaderValue;
use http_body_util::{Full, StreamBody};
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn enc(v: &[&str]) -> Result<Encoding, BodyError> {
    let mut h = HeaderMap::new();
    for x in v {
        h.append(CONTENT_ENCODING, HeaderValue::from_str(x).unwrap());
    }
    content_encoding(&h)
}

#[test]
fn encodings_recognised_and_refused() {
    assert_eq!(enc(&[]), Ok(Encoding::Identity));
    assert_eq!(enc(&["identity"]), Ok(Encoding::Identity));
    assert_eq!(enc(&["GZIP"]), Ok(Encoding::Gzip));
    assert_eq!(enc(&["x-gzip"]), Ok(Encoding::Gzip));
    assert_eq!(enc(&["zstd"]), Ok(Encoding::Zstd));
    for bad in [
        &["br"][..],
        &["deflate"],
        &["gzip, zstd"],
        &["gzip", "gzip"],
        &[""],
        &["compress"],
    ] {
        assert_eq!(enc(bad), Err(BodyError::UnsupportedEncoding), "{bad:?}");
    }
    assert_eq!(BodyError::UnsupportedEncoding.status(), 415);
    assert_eq!(BodyError::TooLarge.status(), 413);
}

#[test]
fn gzip_and_zstd_round_trip() {
    let text = br#"{"model":"llama3.2","prompt":"hi"}"#;
    assert_eq!(
        &decode_sync(Encoding::Gzip, &gzip(text), 1000).unwrap()[..],
        text
    );
    let z = zstd::encode_all(&text[..], 3).unwrap();
    assert_eq!(&decode_sync(Encoding::Zstd, &z, 1000).unwrap()[..], text);
    // Concatenated gzip members decode as one stream, as Go's reader does.
    let mut two = gzip(b"ab");
    two.extend(gzip(b"cd"));
    assert_eq!(&decode_sync(Encoding::Gzip, &two, 10).unwrap()[..], b"abcd");
}

#[test]
fn bombs_are_too_large() {
    let zeros = vec![0u8; 10 * 1024 * 1024];
    let g = gzip(&zeros);
    assert!(g.len() < 64 * 1024);
    assert_eq!(
        decode_sync(Encoding::Gzip, &g, 1024 * 1024),
        Err(BodyError::TooLarge)
    );
    let z = zstd::encode_all(&zeros[..], 19).unwrap();
    assert_eq!(
        decode_sync(Encoding::Zstd, &z, 1024 * 1024),
        Err(BodyError::TooLarge)
    );
    // Exactly at the limit is fine.
    assert_eq!(
        decode_sync(Encoding::Gzip, &gzip(&[1u8; 100]), 100)
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn corrupt_or_trailing_garbage_is_bad_encoding() {
    assert_eq!(
        decode_sync(Encoding::Gzip, b"not gzip", 100),
        Err(BodyError::BadEncoding)
    );
    assert_eq!(
        decode_sync(Encoding::Zstd, b"not zstd", 100),
        Err(BodyError::BadEncoding)
    );
    let mut g = gzip(b"{}");
    g.extend_from_slice(b"GARBAGE");
    assert_eq!(
        decode_sync(Encoding::Gzip, &g, 100),
        Err(BodyError::BadEncoding)
    );
    let mut z = zstd::encode_all(&b"{}"[..], 3).unwrap();
    z.extend_from_slice(b"GARBAGE");
    assert_eq!(
        decode_sync(Encoding::Zstd, &z, 100),
        Err(BodyError::BadEncoding)
    );
    let g = gzip(b"{}");
    assert_eq!(
        decode_sync(Encoding::Gzip, &g[..g.len() - 4], 100),
        Err(BodyError::BadEncoding)
    );
}

#[tokio::test]
async fn large_inputs_decode_off_runtime() {
    let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let g = gzip(&data);
    assert!(g.len() > DECODE_INLINE_MAX);
    let out = decode(Encoding::Gzip, Bytes::from(g), data.len())
        .await
        .unwrap();
    assert_eq!(out.len(), data.len());
}

#[tokio::test]
async fn read_limited_enforces_the_limit_across_chunks() {
    let chunks = |n: usize| {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = (0..n)
            .map(|i| Ok(http_body::Frame::data(Bytes::from(vec![i as u8; 10]))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    };
    let all = read_limited(chunks(3), 30, None).await.unwrap();
    assert_eq!(all.len(), 30);
    assert_eq!(&all[10..20], &[1u8; 10]);
    assert_eq!(
        read_limited(chunks(4), 30, Some(40)).await,
        Err(BodyError::TooLarge)
    );
    let one = read_limited(Full::new(Bytes::from_static(b"abc")), 3, Some(3))
        .await
        .unwrap();
    assert_eq!(&one[..], b"abc");
    assert!(read_limited(Full::new(Bytes::new()), 0, None)
        .await
        .unwrap()
        .is_empty());
}

#[test]
fn declared_length_parses() {
    let mut h = HeaderMap::new();
    assert_eq!(declared_length(&h), None);
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("42"));
    assert_eq!(declared_length(&h), Some(42));
}

#[test]
fn the_too_large_message_names_the_inspection_limit_it_enforces() {
    let mib = corral_policy::config::DEFAULT_INSPECTED_BODY_LIMIT / (1024 * 1024);
    let text = BodyError::TooLarge.to_string();
    assert!(text.contains(&format!("{mib} MiB")), "{text}");
    assert_eq!(BodyError::TooLarge.failure().status.as_u16(), 413);
}
