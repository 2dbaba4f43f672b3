//! An answer's body, read from its connection as it is polled; the
//! connection goes back to the pool the moment the body's last byte is
//! read, whether or not anyone polls again.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::Response;
use http::uri::Authority;
use http_body::{Frame, SizeHint};

use super::wire::{Conn, Framing, Head, take};
use super::{Error, pool};

/// The longest chunk-size or trailer line taken.
const MAX_LINE: usize = 8 * 1024;

/// A member's answer body over [`super::send`].
#[derive(Debug)]
pub struct Body {
    state: State,
    /// Until the body ends; then in the pool, or closed.
    conn: Option<Conn>,
    reusable: bool,
    authority: Authority,
}

#[derive(Debug)]
enum State {
    /// This many bytes to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the member closes.
    Close,
    Done,
}

/// Where a chunked body is (RFC 9112 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

/// What the bytes read so far give of a chunked body.
enum Step {
    Data(Bytes),
    More,
    End,
}

/// The answer whose `head` was read from `conn`.
pub(super) fn answer(
    conn: Conn,
    head: Head,
    head_only: bool,
    authority: Authority,
) -> Result<Response<Body>, Error> {
    let (framing, reusable) = head.framing(head_only)?;
    let state = match framing {
        Framing::Empty => State::Done,
        Framing::Length(n) => State::Length(n),
        Framing::Chunked => State::Chunked(Chunk::Size),
        Framing::Close => State::Close,
    };
    let mut body = Body {
        state,
        conn: Some(conn),
        reusable,
        authority,
    };
    body.settle()?;
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    Ok(response)
}

impl Body {
    /// Ends the body if what was read already completes it: a chunked
    /// body's last chunk often comes with the data before it.
    fn settle(&mut self) -> Result<(), Error> {
        if let (State::Chunked(chunk), Some(conn)) = (&mut self.state, &mut self.conn)
            && let Step::End = decode(chunk, &mut conn.buf, false)?
        {
            self.state = State::Done;
        }
        if let State::Done | State::Length(0) = self.state {
            self.finish();
        }
        Ok(())
    }

    /// The body is complete: its connection goes back to this thread's pool
    /// if it can carry another request.
    fn finish(&mut self) {
        self.state = State::Done;
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Bytes past the answer's end were never asked for.
        if self.reusable && conn.buf.is_empty() {
            conn.release_buffer();
            pool::put(&self.authority, conn);
        }
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // A body that is done has no connection left (`finish`).
            let data = match &mut this.state {
                State::Length(left) if !conn.buf.is_empty() => {
                    let data = take(&mut conn.buf, *left);
                    *left -= data.len() as u64;
                    Some(data)
                }
                State::Close if !conn.buf.is_empty() => Some(conn.buf.split().freeze()),
                State::Chunked(chunk) => match decode(chunk, &mut conn.buf, true) {
                    Ok(Step::Data(data)) => Some(data),
                    Ok(Step::End) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Step::More) => None,
                    Err(error) => return this.fail(error),
                },
                State::Length(_) | State::Close | State::Done => None,
            };
            if let Some(data) = data {
                if let Err(error) = this.settle() {
                    return this.fail(error);
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if matches!(this.state, State::Close) => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(Error::Closed),
                Ok(_) => {}
                Err(error) => return this.fail(Error::Io(error)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            State::Chunked(_) | State::Close => SizeHint::default(),
        }
    }
}

/// Takes what it can of a chunked body out of `buf`: data (unless
/// `want_data` is false, when it stops at data), or the end once the last
/// chunk and the trailers (which are dropped) are in.
fn decode(chunk: &mut Chunk, buf: &mut BytesMut, want_data: bool) -> Result<Step, Error> {
    loop {
        match chunk {
            Chunk::Size => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((len, size))) => {
                    buf.advance(len);
                    *chunk = match size {
                        0 => Chunk::Trailers,
                        n => Chunk::Data(n),
                    };
                }
                Ok(httparse::Status::Partial) if buf.len() <= MAX_LINE => return Ok(Step::More),
                _ => return Err(Error::Invalid("a malformed chunk size")),
            },
            Chunk::Data(left) => {
                if buf.is_empty() || !want_data {
                    return Ok(Step::More);
                }
                let data = take(buf, *left);
                *left -= data.len() as u64;
                if *left == 0 {
                    *chunk = Chunk::DataEnd;
                }
                return Ok(Step::Data(data));
            }
            Chunk::DataEnd => match buf.first() {
                None => return Ok(Step::More),
                Some(b'\r') if buf.len() < 2 => return Ok(Step::More),
                Some(b'\r') if buf[1] == b'\n' => {
                    buf.advance(2);
                    *chunk = Chunk::Size;
                }
                Some(_) => return Err(Error::Invalid("a chunk longer than its size")),
            },
            Chunk::Trailers => {
                let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                    if buf.len() > MAX_LINE {
                        return Err(Error::Invalid("a trailer line longer than 8 KiB"));
                    }
                    return Ok(Step::More);
                };
                let blank = buf[..end].iter().all(|&b| b == b'\r');
                buf.advance(end + 1);
                if blank {
                    return Ok(Step::End);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8]) -> Result<(Vec<u8>, bool), Error> {
        let mut buf = BytesMut::from(wire);
        let mut chunk = Chunk::Size;
        let mut out = Vec::new();
        loop {
            match decode(&mut chunk, &mut buf, true)? {
                Step::Data(data) => out.extend_from_slice(&data),
                Step::More => return Ok((out, false)),
                Step::End => return Ok((out, buf.is_empty())),
            }
        }
    }

    #[test]
    fn chunks_are_joined_and_trailers_dropped() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(decode_all(wire).unwrap(), (b"hello!".to_vec(), true));
    }

    #[test]
    fn a_body_cut_anywhere_waits_for_more() {
        let wire = b"5\r\nhello\r\n0\r\n\r\n";
        for cut in 0..wire.len() {
            let (data, _) = decode_all(&wire[..cut]).unwrap();
            assert!(b"hello".starts_with(&data), "cut at {cut}");
        }
    }

    /// What is read with a head may hold the whole body; looking for its
    /// end must not eat its data.
    #[test]
    fn looking_for_the_end_stops_at_data() {
        let mut buf = BytesMut::from(&b"2\r\nab\r\n0\r\n\r\n"[..]);
        let mut chunk = Chunk::Size;
        assert!(matches!(
            decode(&mut chunk, &mut buf, false),
            Ok(Step::More)
        ));
        assert!(matches!(decode(&mut chunk, &mut buf, true), Ok(Step::Data(d)) if d == "ab"));
        assert!(matches!(decode(&mut chunk, &mut buf, false), Ok(Step::End)));
    }

    #[test]
    fn a_chunk_longer_than_its_size_is_refused() {
        assert!(decode_all(b"2\r\nabc\r\n0\r\n\r\n").is_err());
        assert!(decode_all(b"zz\r\n").is_err());
    }
}
