//! HTTP/1.1 on one connection (RFC 9112): a request encoded whole, an
//! answer's head parsed with `httparse`, and how its body is framed.

use std::io;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::Error;
use crate::fields::{self, has_token};

/// The most header fields an answer may have (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// The longest head an answer may have.
const MAX_HEAD: usize = 64 * 1024;
/// The first read of an answer takes this much; reads that fill it double
/// the next, up to [`MAX_READ`].
const FIRST_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;

/// A body up to this size is copied behind the head, so that the request
/// goes out in one write; a larger one is written from its own buffer.
const COPIED_BODY: usize = 16 * 1024;

/// A request as it goes on the wire.
pub(super) struct Wire {
    /// The head, and the body when it is small.
    head: Vec<u8>,
    /// The body when it is large, else empty.
    body: Bytes,
}

/// One connection to a member, and what was read from it but not consumed.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    /// Empty, without an allocation, whenever nothing is pending: the
    /// buffer is taken once the socket is readable.
    pub(super) buf: BytesMut,
    read_size: usize,
    /// The runtime that drives this socket: only a pool of its threads
    /// may keep it.
    pub(super) runtime: Option<tokio::runtime::Id>,
}

/// A write that failed, and how much of the request had gone out.
pub(super) struct WriteFailed {
    pub(super) written: usize,
    pub(super) error: io::Error,
}

/// An answer's head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
}

/// How an answer's body ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (a 204, a 304, the answer to HEAD).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the member closes the connection.
    Close,
}

impl Conn {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            read_size: FIRST_READ,
            runtime: current_runtime(),
        }
    }

    /// Writes all of `wire`; a failure says how much had gone out.
    pub(super) async fn write(&mut self, wire: &Wire) -> Result<(), WriteFailed> {
        let mut written = 0;
        for part in [&wire.head[..], &wire.body[..]] {
            let mut done = 0;
            while done < part.len() {
                match self.stream.write(&part[done..]).await {
                    Ok(0) => {
                        let error = io::Error::from(io::ErrorKind::WriteZero);
                        return Err(WriteFailed { written, error });
                    }
                    Ok(n) => {
                        done += n;
                        written += n;
                    }
                    Err(error) => return Err(WriteFailed { written, error }),
                }
            }
        }
        Ok(())
    }

    /// Reads into the buffer once the socket is readable; `Ok(0)` is the
    /// member's end of the connection.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            let room = self.buf.capacity() - self.buf.len();
            if room < self.read_size / 2 {
                self.buf.reserve(self.read_size);
            }
            let room = self.buf.capacity() - self.buf.len();
            match self.stream.try_read_buf(&mut self.buf) {
                Ok(n) => {
                    if n == room && self.read_size < MAX_READ {
                        self.read_size *= 2;
                    }
                    // A member that sends its head and then its body (an
                    // SSE answer) would cost a read that finds nothing.
                    if n > 0 && n < room {
                        crate::readiness::drained(&self.stream);
                    }
                    return Poll::Ready(Ok(n));
                }
                // Readiness was stale; it is cleared now, so the next
                // poll waits for the socket.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Reads the head of the answer, past any interim (1xx) ones.
    pub(super) async fn read_head(&mut self) -> Result<Head, Error> {
        loop {
            if let Some((head, len)) = parse_head(&self.buf)? {
                self.buf.advance(len);
                if head.status.is_informational() {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(Error::Invalid("a protocol switch nobody asked for"));
                    }
                    continue;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Error::Invalid("a head larger than 64 KiB"));
            }
            if self.fill().await? == 0 {
                return Err(Error::Closed);
            }
        }
    }

    /// True when this idle connection cannot carry another request: the
    /// member closed it or sent something unasked, or its runtime is gone.
    pub(super) fn is_unusable(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut probe = [0; 1];
        let read = match self.stream.poll_read_ready(&mut cx) {
            // Readable may only be left over from the last answer's read;
            // a read tells, and clears it if so.
            Poll::Ready(Ok(())) => self.stream.try_read(&mut probe),
            Poll::Ready(Err(_)) => return true,
            // The runtime may not have seen yet what the kernel knows (a
            // close that just came in): ask the socket itself.
            Poll::Pending => {
                use nix::sys::socket::{MsgFlags, recv};
                use std::os::fd::AsRawFd;
                let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
                recv(self.stream.as_raw_fd(), &mut probe, flags).map_err(io::Error::from)
            }
        };
        !matches!(read, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Forgets what the last answer needed, so an idle connection holds no
    /// buffer.
    pub(super) fn release_buffer(&mut self) {
        self.buf = BytesMut::new();
    }
}

/// The runtime the caller runs on.
pub(super) fn current_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current()
        .ok()
        .map(|runtime| runtime.id())
}

/// `request` as it goes on the wire. `Host` comes from the URI unless the
/// request names one; the body's length is the only framing sent.
pub(super) fn encode(request: &Request<Bytes>, authority: &Authority) -> Wire {
    let body = request.body();
    let copied = body.len() <= COPIED_BODY;
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let mut wire = Vec::with_capacity(256 + if copied { body.len() } else { 0 });
    wire.extend_from_slice(request.method().as_str().as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(target.as_bytes());
    wire.extend_from_slice(b" HTTP/1.1\r\n");
    let headers = request.headers();
    if !headers.contains_key(HOST) {
        fields::write(&mut wire, HOST.as_str(), authority.as_str().as_bytes());
    }
    for (name, value) in headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING && name != CONNECTION {
            fields::write(&mut wire, name.as_str(), value.as_bytes());
        }
    }
    let bodiless = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
    );
    if !body.is_empty() || !bodiless {
        let length = body.len().to_string();
        fields::write(&mut wire, CONTENT_LENGTH.as_str(), length.as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    if copied {
        wire.extend_from_slice(body);
    }
    Wire {
        head: wire,
        body: if copied { Bytes::new() } else { body.clone() },
    }
}

/// The head at the start of `read` and its length, once all of it is
/// there.
fn parse_head(read: &[u8]) -> Result<Option<(Head, usize)>, Error> {
    if read.is_empty() {
        return Ok(None);
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(read) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::Invalid("more than 100 header fields"));
        }
        Err(_) => return Err(Error::Invalid("a malformed head")),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(Error::Invalid("a malformed status code"))?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let values = fields::Values::new(read, len);
    for field in response.headers.iter() {
        let name = fields::name(field.name.as_bytes())
            .map_err(|_| Error::Invalid("a malformed header name"))?;
        let value = values
            .value(field.value)
            .map_err(|_| Error::Invalid("a malformed header value"))?;
        headers.append(name, value);
    }
    let head = Head {
        status,
        version,
        headers,
    };
    Ok(Some((head, len)))
}

impl Head {
    /// How the body ends, and whether the connection may carry another
    /// request after it.
    pub(super) fn framing(&self, head_only: bool) -> Result<(Framing, bool), Error> {
        let closes = self.version == Version::HTTP_10
            || self
                .headers
                .get_all(CONNECTION)
                .iter()
                .any(|v| has_token(v, "close"));
        if head_only
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED
        {
            return Ok((Framing::Empty, !closes));
        }
        if let Some(last) = self.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
            let chunked = last
                .to_str()
                .ok()
                .and_then(|codings| codings.rsplit(',').next())
                .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
            // With both, the length is a lie or a smuggling attempt: read
            // the chunks, then close (RFC 9112 section 6.3).
            let both = self.headers.contains_key(CONTENT_LENGTH);
            return Ok(match chunked {
                true => (Framing::Chunked, !closes && !both),
                false => (Framing::Close, false),
            });
        }
        let mut lengths = self.headers.get_all(CONTENT_LENGTH).iter();
        let Some(first) = lengths.next() else {
            return Ok((Framing::Close, false));
        };
        let length = content_length(first)?;
        for other in lengths {
            if content_length(other)? != length {
                return Err(Error::Invalid("conflicting Content-Length fields"));
            }
        }
        let framing = match length {
            0 => Framing::Empty,
            n => Framing::Length(n),
        };
        Ok((framing, !closes))
    }
}

/// A member's `Content-Length`, which may repeat one length as a list.
fn content_length(value: &HeaderValue) -> Result<u64, Error> {
    let text = value.to_str().ok().map(str::trim).unwrap_or_default();
    let mut lengths = text.split(',').map(|n| fields::content_length(n.trim()));
    match lengths.next().flatten() {
        Some(n) if lengths.all(|other| other == Some(n)) => Ok(n),
        _ => Err(Error::Invalid("a malformed Content-Length")),
    }
}

/// The start of `buf` up to `n` bytes, taken out of it.
pub(super) fn take(buf: &mut BytesMut, n: u64) -> Bytes {
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
    buf.split_to(n).freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn a_request_carries_its_host_and_length_and_no_framing_of_its_own() {
        let request = Request::post("http://127.0.0.1:9/mcp?x=1")
            .header("transfer-encoding", "chunked")
            .header("x-api-key", "k")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let authority = request.uri().authority().unwrap().clone();
        let wire = String::from_utf8(encode(&request, &authority).head).unwrap();
        assert_eq!(
            wire,
            "POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\nx-api-key: k\r\ncontent-length: 2\r\n\r\n{}"
        );
        let get = Request::get("http://h/mcp").body(Bytes::new()).unwrap();
        let wire = String::from_utf8(encode(&get, get.uri().authority().unwrap()).head).unwrap();
        assert_eq!(wire, "GET /mcp HTTP/1.1\r\nhost: h\r\n\r\n");
        let large = Bytes::from(vec![b'x'; COPIED_BODY + 1]);
        let post = Request::post("http://h/mcp").body(large.clone()).unwrap();
        let wire = encode(&post, post.uri().authority().unwrap());
        assert!(
            String::from_utf8(wire.head)
                .unwrap()
                .ends_with("content-length: 16385\r\n\r\n")
        );
        assert_eq!(wire.body, large);
    }

    #[test]
    fn a_head_is_parsed_once_complete() {
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n")
                .unwrap()
                .is_none()
        );
        let (head, len) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, len), (StatusCode::OK, 38));
        assert_eq!(head.headers["content-length"], "2");
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
    }

    /// RFC 9112 section 6.3, in its order of precedence.
    #[test]
    fn the_body_is_framed_as_the_head_says() {
        let framing = |text: &str| head(text).framing(false);
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n").unwrap(),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing("HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").unwrap(),
            (Framing::Empty, true)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap(),
            (Framing::Chunked, true)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n")
                .unwrap(),
            (Framing::Chunked, false)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n").unwrap(),
            (Framing::Close, false)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\n\r\n").unwrap(),
            (Framing::Close, false)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n").unwrap(),
            (Framing::Length(1), false)
        );
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n").unwrap(),
            (Framing::Length(1), false)
        );
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
            (Framing::Empty, true)
        );
        assert!(
            framing("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n").is_err()
        );
        assert!(framing("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n").is_err());
        assert_eq!(
            head("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
                .framing(true)
                .unwrap(),
            (Framing::Empty, true)
        );
    }
}
