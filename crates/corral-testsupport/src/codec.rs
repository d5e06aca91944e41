//! Request-body encoders for tests: gzip, zstd, deflate, and decompression bombs.

use std::io::Write as _;

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap_or_default()
}

/// A gzip stream that inflates to `prefix` followed by `zeros` zero bytes, built without
/// holding the inflated size in memory.
pub fn gzip_bomb(prefix: &[u8], zeros: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(prefix);
    let block = [0u8; 64 * 1024];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        let _ = e.write_all(&block[..n]);
        left -= n;
    }
    e.finish().unwrap_or_default()
}

/// The zstd counterpart of [`gzip_bomb`].
pub fn zstd_bomb(prefix: &[u8], zeros: usize) -> Vec<u8> {
    let Ok(mut e) = zstd::stream::write::Encoder::new(Vec::new(), 19) else {
        return Vec::new();
    };
    let _ = e.write_all(prefix);
    let block = [0u8; 64 * 1024];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        let _ = e.write_all(&block[..n]);
        left -= n;
    }
    e.finish().unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn round_trips_and_bombs_are_small() {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gzip(b"hello")[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        assert_eq!(zstd::stream::decode_all(&zstd(b"hi")[..]).unwrap(), b"hi");
        let bomb = gzip_bomb(b"{", 50 << 20);
        assert!(bomb.len() < 200 * 1024, "{}", bomb.len());
        let zbomb = zstd_bomb(b"{", 50 << 20);
        assert!(zbomb.len() < 64 * 1024, "{}", zbomb.len());
        let mut n = 0u64;
        let mut d = flate2::read::GzDecoder::new(&bomb[..]);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = d.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        assert_eq!(n, 1 + (50 << 20));
    }
}
