//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1),
//! shared by both codecs. Data is handed out as slices split off the codec
//! buffer, so a chunk costs a `Bytes` handle, not a copy.

use bytes::{Buf, Bytes, BytesMut};

use super::head::{map_parse_error, with_header_slots, HeadScanner};
use super::HttpError;

/// A chunk-size line, extensions included, may not be longer than this.
/// Extensions are ignored, so there is no reason to buffer more of them.
pub(super) const MAX_CHUNK_LINE: usize = 4096;

/// 16 hex digits fill a u64; more can only be padding or an overflow, and
/// parsers that disagree on which is how smuggling starts.
const MAX_SIZE_DIGITS: usize = 16;

#[derive(Clone, Debug)]
enum State {
    /// Reading a chunk-size line; `scanned` bytes are known to hold no LF.
    Size {
        scanned: usize,
    },
    Data {
        remaining: u64,
    },
    /// The CRLF that closes a chunk's data.
    DataEnd,
    Trailers(HeadScanner),
    Done,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq)]
pub(super) enum Chunk {
    Data(Bytes),
    /// The last chunk and trailer section have been consumed.
    End,
}

#[derive(Clone, Debug)]
pub(super) struct ChunkedDecoder {
    state: State,
    total: u64,
    max_total: u64,
    max_trailer_bytes: usize,
    max_trailers: usize,
}

impl ChunkedDecoder {
    /// `max_total` bounds the decoded body (`BodyTooLarge` beyond);
    /// trailers, parsed and dropped, are bounded like a head.
    pub(super) fn new(
        max_total: u64,
        max_trailer_bytes: usize,
        max_trailers: usize,
    ) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size { scanned: 0 },
            total: 0,
            max_total,
            max_trailer_bytes,
            max_trailers,
        }
    }

    /// Consumes framing from the front of `buf` and returns the next data
    /// or the end; `Ok(None)` means `buf` holds no complete next step.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, HttpError> {
        loop {
            match &mut self.state {
                State::Size { scanned } => {
                    // The LF may sit at index MAX_CHUNK_LINE at the latest.
                    let window = buf.get(..=MAX_CHUNK_LINE).unwrap_or(buf);
                    let found = window
                        .get(*scanned..)
                        .and_then(|tail| tail.iter().position(|&b| b == b'\n'));
                    let Some(lf) = found.map(|offset| *scanned + offset) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(HttpError::Malformed("chunk size line too long"));
                        }
                        *scanned = window.len();
                        return Ok(None);
                    };
                    let line = buf.get(..lf).unwrap_or_default();
                    let Some(line) = line.strip_suffix(b"\r") else {
                        return Err(HttpError::Malformed("chunk size line not ended by CRLF"));
                    };
                    let size = parse_size_line(line)?;
                    if size > self.max_total.saturating_sub(self.total) {
                        return Err(HttpError::BodyTooLarge);
                    }
                    self.total += size;
                    buf.advance(lf + 1);
                    self.state = if size == 0 {
                        State::Trailers(HeadScanner::for_trailers())
                    } else {
                        State::Data { remaining: size }
                    };
                }
                State::Data { remaining } => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    // `take` fits in `remaining`, since it is at most `remaining`.
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::DataEnd;
                    }
                    return Ok(Some(Chunk::Data(buf.split_to(take).freeze())));
                }
                State::DataEnd => match buf.get(..2) {
                    Some(b"\r\n") => {
                        buf.advance(2);
                        self.state = State::Size { scanned: 0 };
                    }
                    Some(_) => return Err(HttpError::Malformed("chunk data not followed by CRLF")),
                    None if buf.first().is_some_and(|&b| b != b'\r') => {
                        return Err(HttpError::Malformed("chunk data not followed by CRLF"));
                    }
                    None => return Ok(None),
                },
                State::Trailers(scanner) => {
                    let window = buf.get(..self.max_trailer_bytes).unwrap_or(buf);
                    let Some(end) = scanner.scan(window)? else {
                        if buf.len() >= self.max_trailer_bytes {
                            return Err(HttpError::HeadTooLarge);
                        }
                        return Ok(None);
                    };
                    check_trailers(buf.get(..end).unwrap_or_default(), self.max_trailers)?;
                    buf.advance(end);
                    self.state = State::Done;
                    return Ok(Some(Chunk::End));
                }
                State::Done => return Ok(Some(Chunk::End)),
            }
        }
    }
}

/// `chunk-size [ chunk-ext ]` without its CRLF. Extensions are checked for
/// stray control bytes and otherwise ignored.
fn parse_size_line(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::Malformed("invalid chunk size"));
    }
    if digits > MAX_SIZE_DIGITS {
        return Err(HttpError::Malformed("chunk size too large"));
    }
    let (hex, ext) = line.split_at_checked(digits).unwrap_or((line, &[]));
    let size = hex
        .iter()
        .try_fold(0u64, |acc, &b| {
            let digit = (b as char).to_digit(16)?;
            acc.checked_mul(16)?.checked_add(u64::from(digit))
        })
        .ok_or(HttpError::Malformed("chunk size too large"))?;
    let ext_start = ext.iter().position(|&b| b != b' ' && b != b'\t');
    match ext_start.and_then(|start| ext.get(start..)) {
        None if ext.is_empty() => Ok(size),
        Some([b';', rest @ ..]) if rest.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)) => {
            Ok(size)
        }
        _ => Err(HttpError::Malformed("invalid chunk extension")),
    }
}

/// Trailer fields are dropped, but must still be well-formed fields.
fn check_trailers(section: &[u8], max_trailers: usize) -> Result<(), HttpError> {
    with_header_slots(max_trailers, |slots| {
        match httparse::parse_headers(section, slots) {
            Ok(httparse::Status::Complete((len, _))) if len == section.len() => Ok(()),
            Ok(_) => Err(HttpError::Malformed("invalid trailer section")),
            Err(err) => Err(map_parse_error(err, &[], true)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let mut buf = BytesMut::from(input);
        let mut decoder = ChunkedDecoder::new(u64::MAX, 1024, 8);
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf)? {
                Some(Chunk::Data(data)) => out.extend_from_slice(&data),
                Some(Chunk::End) => return Ok((out, buf.len())),
                None => return Err(HttpError::Incomplete),
            }
        }
    }

    #[test]
    fn decodes_with_extensions_and_trailers() {
        let input = b"5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nExpires: never\r\n\r\nNEXT";
        assert_eq!(decode_all(input), Ok((b"hello world".to_vec(), 4)));
    }

    #[test]
    fn size_lines() {
        assert_eq!(parse_size_line(b"ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(
            parse_size_line(b"0000000000000000a"),
            Err(HttpError::Malformed("chunk size too large"))
        );
        assert_eq!(
            parse_size_line(b""),
            Err(HttpError::Malformed("invalid chunk size"))
        );
        assert_eq!(
            parse_size_line(b"-1"),
            Err(HttpError::Malformed("invalid chunk size"))
        );
        assert_eq!(
            parse_size_line(b"5 "),
            Err(HttpError::Malformed("invalid chunk extension"))
        );
        assert_eq!(
            parse_size_line(b"5x"),
            Err(HttpError::Malformed("invalid chunk extension"))
        );
        assert_eq!(
            parse_size_line(b"5;a\0"),
            Err(HttpError::Malformed("invalid chunk extension"))
        );
        assert_eq!(parse_size_line(b"A;"), Ok(10));
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(
            decode_all(b"3\r\nabcX\r\n0\r\n\r\n"),
            Err(HttpError::Malformed("chunk data not followed by CRLF"))
        );
    }

    #[test]
    fn bare_lf_size_line() {
        assert_eq!(
            decode_all(b"3\nabc\r\n0\r\n\r\n"),
            Err(HttpError::Malformed("chunk size line not ended by CRLF"))
        );
    }

    #[test]
    fn limit_checked_at_size_line() {
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n6\r\n"[..]);
        let mut decoder = ChunkedDecoder::new(10, 1024, 8);
        assert!(matches!(decoder.decode(&mut buf), Ok(Some(Chunk::Data(_)))));
        assert_eq!(decoder.decode(&mut buf), Err(HttpError::BodyTooLarge));
    }
}
