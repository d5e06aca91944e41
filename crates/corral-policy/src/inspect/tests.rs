use super::*;

const CT: &str = "multipart/form-data; boundary=B0undary";

fn part(name_params: &str, value: &str) -> String {
    format!("--B0undary\r\nContent-Disposition: form-data; {name_params}\r\n\r\n{value}\r\n")
}

fn body(parts: &[String]) -> Vec<u8> {
    let mut s = parts.concat();
    s.push_str("--B0undary--\r\n");
    s.into_bytes()
}

#[test]
fn finds_the_model_field() {
    let b = body(&[
        part("name=\"file\"; filename=\"a.wav\"", "RIFF\r\n--B0und"),
        part("name=\"model\"", "whisper:large"),
    ]);
    assert_eq!(
        multipart_model(CT, &b),
        Ok(Some("whisper:large".to_string()))
    );
    let b = body(&[
        part("name=\"model\"", "whisper"),
        part("name=\"language\"", "en"),
    ]);
    assert_eq!(multipart_model(CT, &b), Ok(Some("whisper".to_string())));
}

#[test]
fn no_model_field_is_none() {
    let b = body(&[part("name=\"file\"; filename=\"a.wav\"", "RIFF")]);
    assert_eq!(multipart_model(CT, &b), Ok(None));
    assert_eq!(multipart_model(CT, b"--B0undary--\r\n"), Ok(None));
    assert_eq!(
        multipart_model(CT, b"preamble text\r\n--B0undary--"),
        Ok(None)
    );
    // A delimiter that does not start a line is preamble.
    assert_eq!(
        multipart_model(CT, b"x--B0undary\r\n\r\n--B0undary--"),
        Ok(None)
    );
    // A field whose name merely contains "model".
    let b = body(&[part("name=\"models\"", "x"), part("name=\"model_\"", "y")]);
    assert_eq!(multipart_model(CT, &b), Ok(None));
}

#[test]
fn content_type_variants() {
    let b = body(&[part("name=\"model\"", "m")]);
    for ct in [
        "multipart/form-data; boundary=B0undary",
        "Multipart/Form-Data; BOUNDARY=B0undary",
        "multipart/form-data;boundary=\"B0undary\"",
        "multipart/form-data; charset=utf-8; boundary=B0undary",
    ] {
        assert_eq!(multipart_model(ct, &b), Ok(Some("m".to_string())), "{ct}");
    }
    for ct in [
        "application/json",
        "multipart/mixed; boundary=B0undary",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"B0undary",
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-data; boundary=bad\u{7f}",
        &format!("multipart/form-data; boundary={}", "x".repeat(71)),
    ] {
        assert_eq!(
            multipart_model(ct, &b),
            Err(InspectError::NotMultipart),
            "{ct}"
        );
    }
}

#[test]
fn lf_only_bodies() {
    let b = b"--B0undary\nContent-Disposition: form-data; name=model\n\nwhisper\n--B0undary--\n";
    assert_eq!(multipart_model(CT, b), Ok(Some("whisper".to_string())));
    let b =
        b"--B0undary  \t\r\nContent-Disposition: form-data; name=model\r\n\r\nw\r\n--B0undary--";
    assert_eq!(multipart_model(CT, b), Ok(Some("w".to_string())));
}

#[test]
fn ambiguity_is_refused() {
    let dup = body(&[
        part("name=\"model\"", "llama3.2"),
        part("name=\"model\"", "gpt-oss:120b-cloud"),
    ]);
    assert_eq!(multipart_model(CT, &dup), Err(InspectError::DuplicateModel));
    let dup_file = body(&[
        part("name=\"model\"", "a"),
        part("name=\"model\"; filename=\"x\"", "b"),
    ]);
    assert_eq!(
        multipart_model(CT, &dup_file),
        Err(InspectError::DuplicateModel)
    );
    for params in [
        "name*=utf-8''model",
        "name*0=mo; name*1=del",
        "NAME*=utf-8''model",
    ] {
        let b = body(&[part(params, "x")]);
        assert_eq!(
            multipart_model(CT, &b),
            Err(InspectError::UnsupportedEncoding),
            "{params}"
        );
    }
    let b = body(&[part("name=\"a\"; name=\"model\"", "x")]);
    assert_eq!(multipart_model(CT, &b), Err(InspectError::Malformed));
    let qp = b"--B0undary\r\nContent-Disposition: form-data; name=\"model\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nllama=33\r\n--B0undary--";
    assert_eq!(
        multipart_model(CT, qp),
        Err(InspectError::UnsupportedEncoding)
    );
    let two_cd = b"--B0undary\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--B0undary--";
    assert_eq!(multipart_model(CT, two_cd), Err(InspectError::Malformed));
    let folded = b"--B0undary\r\nContent-Disposition: form-data;\r\n name=\"model\"\r\n\r\nm\r\n--B0undary--";
    assert_eq!(multipart_model(CT, folded), Err(InspectError::Malformed));
    // Mixed line endings after the first delimiter.
    let mixed = b"--B0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--B0undary\nContent-Disposition: form-data; name=\"model\"\n\nm\n--B0undary--";
    assert_eq!(multipart_model(CT, mixed), Err(InspectError::Malformed));
}

#[test]
fn escaped_names_are_unescaped_like_go() {
    let b = body(&[part("name=\"mo\\del\"", "llama3.2")]);
    assert_eq!(multipart_model(CT, &b), Ok(Some("llama3.2".to_string())));
    let b = body(&[part("name=\"x;name=model\"", "llama3.2")]);
    assert_eq!(multipart_model(CT, &b), Ok(None));
    let b = body(&[part("NAME = \"model\"", "m")]);
    assert_eq!(multipart_model(CT, &b), Ok(Some("m".to_string())));
}

#[test]
fn malformed_bodies() {
    for b in [
        &b""[..],
        b"no boundary here",
        b"--B0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nunterminated",
        b"--B0undary\r\nContent-Disposition: form-data; name=\"model\"",
        b"--B0undaryX\r\n\r\nx\r\n--B0undary--",
        b"--B0undary\r\nno colon here\r\n\r\nx\r\n--B0undary--",
        b"--B0undary\r\n\xff\xfe: x\r\n\r\nx\r\n--B0undary--",
    ] {
        assert!(
            multipart_model(CT, b).is_err(),
            "{:?}",
            String::from_utf8_lossy(b)
        );
    }
}

#[test]
fn bad_model_values() {
    for v in ["", "a\u{1}b", &"m".repeat(600)] {
        let b = body(&[part("name=\"model\"", v)]);
        assert_eq!(
            multipart_model(CT, &b),
            Err(InspectError::BadModel),
            "{v:?}"
        );
    }
    let mut b = b"--B0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n".to_vec();
    b.extend_from_slice(b"\xff\xfe\r\n--B0undary--");
    assert_eq!(multipart_model(CT, &b), Err(InspectError::BadModel));
    // A CR LF inside the value: the delimiter is only a real one after CR LF.
    let b = body(&[part("name=\"model\"", "a\r\nb")]);
    assert_eq!(multipart_model(CT, &b), Err(InspectError::BadModel));
}

#[test]
fn limits() {
    let many: Vec<String> = (0..300)
        .map(|i| part(&format!("name=\"f{i}\""), "x"))
        .collect();
    assert_eq!(
        multipart_model(CT, &body(&many)),
        Err(InspectError::TooComplex)
    );
    let mut headers = String::from("--B0undary\r\n");
    for i in 0..20 {
        headers.push_str(&format!("X-H{i}: v\r\n"));
    }
    headers.push_str("\r\nx\r\n--B0undary--");
    assert_eq!(
        multipart_model(CT, headers.as_bytes()),
        Err(InspectError::TooComplex)
    );
    let long = format!(
        "--B0undary\r\nX: {}\r\n\r\nx\r\n--B0undary--",
        "v".repeat(2000)
    );
    assert_eq!(
        multipart_model(CT, long.as_bytes()),
        Err(InspectError::TooComplex)
    );
}

#[test]
fn large_body_scans_linearly() {
    let ct = format!("multipart/form-data; boundary={}b", "a".repeat(68));
    let line = format!("\n{}\n", "a".repeat(69));
    let mut b = format!(
        "--{}b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
        "a".repeat(68)
    )
    .into_bytes();
    while b.len() < 8 * 1024 * 1024 {
        b.extend_from_slice(line.as_bytes());
    }
    let start = std::time::Instant::now();
    assert_eq!(multipart_model(&ct, &b), Err(InspectError::Malformed));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
