//! Body framing shared by both codecs: turns buffered bytes into data
//! slices and an end marker, whatever delimits the body on the wire.

use bytes::{Bytes, BytesMut};

use super::chunked::{Chunk, ChunkedDecoder};
use super::HttpError;

#[derive(Clone, Debug)]
pub(super) enum BodyDecoder {
    /// This many bytes are still to come (0: the body is over).
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Everything until the peer closes.
    UntilClose,
}

impl BodyDecoder {
    /// The next body step; `Ok(None)` means more bytes are needed. `eof`
    /// says the peer has closed, so no more bytes will come.
    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<Chunk>, HttpError> {
        match self {
            BodyDecoder::Length(0) => Ok(Some(Chunk::End)),
            BodyDecoder::Length(remaining) => {
                if buf.is_empty() {
                    return if eof {
                        Err(HttpError::Incomplete)
                    } else {
                        Ok(None)
                    };
                }
                let take = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                // `take` is at most `remaining`, so this cannot underflow.
                *remaining -= take as u64;
                Ok(Some(Chunk::Data(split(buf, take))))
            }
            BodyDecoder::Chunked(decoder) => match decoder.decode(buf)? {
                Some(step) => Ok(Some(step)),
                None if eof => Err(HttpError::Incomplete),
                None => Ok(None),
            },
            BodyDecoder::UntilClose if !buf.is_empty() => {
                Ok(Some(Chunk::Data(split(buf, buf.len()))))
            }
            BodyDecoder::UntilClose if eof => Ok(Some(Chunk::End)),
            BodyDecoder::UntilClose => Ok(None),
        }
    }
}

/// Hands out the front of the buffer without copying it.
fn split(buf: &mut BytesMut, len: usize) -> Bytes {
    buf.split_to(len).freeze()
}
