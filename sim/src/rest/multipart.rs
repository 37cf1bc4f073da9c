//! A small `multipart/form-data` reader (RFC 7578) for message bodies with
//! files: a `payload_json` part and file parts `files[0]`, `files[1]`, …
//! Parts are slices of the request body, not copies.

use bytes::Bytes;

/// One part of a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// The `filename`, for a file.
    pub filename: Option<String>,
    /// Its `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The content.
    pub data: Bytes,
}

/// Why a form could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MultipartError {
    /// The `Content-Type` has no `boundary` parameter.
    #[error("no boundary in the content type")]
    NoBoundary,
    /// The body does not start with the boundary or does not end with the
    /// closing one.
    #[error("the body is not delimited by its boundary")]
    Unterminated,
    /// A part's headers are not followed by an empty line or have no
    /// `Content-Disposition: form-data; name=…`.
    #[error("a part has malformed headers")]
    BadPart,
}

/// The boundary of a `multipart/form-data` content type, or `None` if
/// `content_type` is something else.
pub(crate) fn boundary(content_type: &str) -> Option<Result<String, MultipartError>> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let found = params_of(params)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty() && b.len() <= 200);
    Some(found.ok_or(MultipartError::NoBoundary))
}

/// The `key=value` parameters after a header's first `;`, values unquoted.
fn params_of(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return out;
        }
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let key = rest[..eq].trim().to_owned();
        rest = &rest[eq + 1..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            v
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let v = rest[..end].trim().to_owned();
            rest = &rest[end..];
            v
        };
        out.push((key, value));
    }
}

/// The first index of `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let at = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|b| *b == first)?;
        i += at;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Read the parts of `body`, delimited by `boundary`.
pub(crate) fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let open = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    // The preamble (usually empty) ends at the first delimiter.
    let mut at = if body.starts_with(open.as_bytes()) {
        open.len()
    } else {
        find(body, delim.as_bytes(), 0).ok_or(MultipartError::Unterminated)? + delim.len()
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the line break ending the delimiter line.
        let line_end = find(body, b"\r\n", at).ok_or(MultipartError::Unterminated)?;
        if !body[at..line_end].iter().all(|b| *b == b' ' || *b == b'\t') {
            return Err(MultipartError::BadPart);
        }
        let start = line_end + 2;
        let end = find(body, delim.as_bytes(), start).ok_or(MultipartError::Unterminated)?;
        parts.push(part(&body.slice(start..end))?);
        at = end + delim.len();
    }
}

/// One part: headers, an empty line, the content.
fn part(raw: &Bytes) -> Result<Part, MultipartError> {
    let (head, data) = if raw.starts_with(b"\r\n") {
        ("", raw.slice(2..))
    } else {
        let sep = find(raw, b"\r\n\r\n", 0).ok_or(MultipartError::BadPart)?;
        let head = std::str::from_utf8(&raw[..sep]).map_err(|_| MultipartError::BadPart)?;
        (head, raw.slice(sep + 4..))
    };
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-disposition") {
            let (kind, params) = value.split_once(';').unwrap_or((value, ""));
            if !kind.trim().eq_ignore_ascii_case("form-data") {
                return Err(MultipartError::BadPart);
            }
            for (k, v) in params_of(params) {
                if k.eq_ignore_ascii_case("name") {
                    name = Some(v);
                } else if k.eq_ignore_ascii_case("filename") {
                    filename = Some(v);
                }
            }
        } else if key.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    Ok(Part {
        name: name.ok_or(MultipartError::BadPart)?,
        filename,
        content_type,
        data,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn boundaries_of_content_types() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc"),
            Some(Ok("abc".into()))
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\"; charset=utf-8"),
            Some(Ok("a b".into()))
        );
        assert_eq!(
            boundary("multipart/form-data"),
            Some(Err(MultipartError::NoBoundary))
        );
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn parts_with_files() {
        let body = Bytes::from_static(
            b"--XyZ\r\n\
Content-Disposition: form-data; name=\"payload_json\"\r\n\
Content-Type: application/json\r\n\r\n\
{\"content\":\"hi\"}\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"files[0]\"; filename=\"a \\\"b\\\".txt\"\r\n\
Content-Type: text/plain\r\n\r\n\
line one\r\n--not the boundary\r\n\
--XyZ--\r\n",
        );
        let parts = parse(&body, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "payload_json");
        assert_eq!(&parts[0].data[..], b"{\"content\":\"hi\"}");
        assert_eq!(parts[1].name, "files[0]");
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".txt"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(&parts[1].data[..], b"line one\r\n--not the boundary");
    }

    #[test]
    fn malformed_forms_are_errors() {
        let unterminated =
            Bytes::from_static(b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nvalue");
        assert_eq!(parse(&unterminated, "b"), Err(MultipartError::Unterminated));
        let nameless =
            Bytes::from_static(b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--");
        assert_eq!(parse(&nameless, "b"), Err(MultipartError::BadPart));
        let empty = Bytes::from_static(b"--b--\r\n");
        assert_eq!(parse(&empty, "b"), Ok(Vec::new()));
    }
}
