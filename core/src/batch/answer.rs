//! The gateway's own HTTP answer to a batch request, read back: the batch
//! worker serves each request through a connection in memory, and this
//! parses what that connection wrote (status and whole body, chunked or
//! not) with the same client codec that reads providers.

use crate::http1::{ClientCodec, ClientEvent, HttpError};
use crate::Limits;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq)]
pub enum AnswerError {
    /// The bytes are not a well-formed HTTP/1.1 response.
    Http(HttpError),
    /// The bytes end before the response does.
    Truncated,
}

/// Parses one complete response from `bytes` (the connection closed after
/// it, so its end is the end of the bytes).
pub fn parse_answer(bytes: &[u8], limits: &Limits) -> Result<Answer, AnswerError> {
    let mut codec = ClientCodec::new(limits, false);
    let mut rest = bytes;
    let mut status = None;
    let mut body = Vec::new();
    loop {
        match codec.poll_event().map_err(AnswerError::Http)? {
            Some(ClientEvent::Head(head)) => status = Some(head.status),
            Some(ClientEvent::Body(chunk)) => body.extend_from_slice(&chunk),
            Some(ClientEvent::End) => {
                return status
                    .map(|status| Answer { status, body })
                    .ok_or(AnswerError::Truncated)
            }
            None if rest.is_empty() => {
                // Only once: a codec that wants more after the end of
                // input is reported, not polled forever.
                if codec.is_finished() {
                    return Err(AnswerError::Truncated);
                }
                codec.feed_eof();
                match codec.poll_event().map_err(AnswerError::Http)? {
                    Some(ClientEvent::End) => {
                        return status
                            .map(|status| Answer { status, body })
                            .ok_or(AnswerError::Truncated)
                    }
                    Some(ClientEvent::Body(chunk)) => {
                        body.extend_from_slice(&chunk);
                        continue;
                    }
                    _ => return Err(AnswerError::Truncated),
                }
            }
            None => {
                let taken = codec.feed(rest);
                if taken == 0 {
                    // The codec's buffer is full and it produced nothing.
                    return Err(AnswerError::Truncated);
                }
                rest = &rest[taken..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_length_and_chunked_answers_read_back_whole() {
        let limits = Limits::default();
        let fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        assert_eq!(
            parse_answer(fixed, &limits).unwrap(),
            Answer {
                status: 200,
                body: b"hello".to_vec()
            }
        );
        let chunked =
            b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_answer(chunked, &limits).unwrap(),
            Answer {
                status: 429,
                body: b"abcde".to_vec()
            }
        );
    }

    #[test]
    fn cut_or_garbled_answers_are_errors_not_hangs() {
        let limits = Limits::default();
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello";
        assert!(parse_answer(cut, &limits).is_err());
        assert!(parse_answer(b"", &limits).is_err());
        assert!(parse_answer(b"garbage\r\n\r\n", &limits).is_err());
    }
}
