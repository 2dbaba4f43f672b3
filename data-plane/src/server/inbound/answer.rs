//! An answer written to the client as hyper would write it: a status line,
//! the handler's headers with `date` added, and the body framed by its
//! `Content-Length` when its size is known (one write for a small answer),
//! else chunked. The head goes out as soon as the answer has it, so an
//! event stream's client sees its status before the first event.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSlice, Write as _};
use std::pin::pin;
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderValue, Response, StatusCode};
use http_body::Body;
use tokio::net::TcpStream;

use super::watch::PeerWatch;
use crate::fields;
use crate::upstream::error::BoxError;

/// How the body of an answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body may follow (204, 304).
    Empty,
    Length(u64),
    Chunked,
}

/// What became of an answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// Whole, and the connection may carry another request.
    KeepAlive,
    /// Whole, and the connection closes now.
    Close,
    /// The client left before its answer was whole.
    PeerGone,
}

/// Writes `response` on `stream`; with `closing`, it says the connection
/// closes after it.
pub(super) async fn write<B>(
    stream: &TcpStream,
    response: Response<B>,
    closing: bool,
    watch: &mut PeerWatch,
) -> io::Result<Sent>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let mut body = pin!(body);
    let framing = framing(parts.status, &parts.headers, body.size_hint().exact());
    let close = closing || has_close(&parts.headers);
    let mut head = encode_head(parts.status, &parts.headers, framing, close);
    if framing == Framing::Empty {
        write_all(stream, &mut [IoSlice::new(&head)]).await?;
        return Ok(if close { Sent::Close } else { Sent::KeepAlive });
    }
    let mut written = 0u64;
    loop {
        // While the head is unsent, a frame that is ready goes out with it;
        // otherwise the head goes first.
        let ready = if head.is_empty() {
            Poll::Pending
        } else {
            poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await
        };
        let frame = match ready {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if !head.is_empty() {
                    write_all(stream, &mut [IoSlice::new(&head)]).await?;
                    head.clear();
                }
                let next = poll_fn(|cx| match body.as_mut().poll_frame(cx) {
                    Poll::Ready(frame) => Poll::Ready(Some(frame)),
                    Poll::Pending => watch.poll_gone(cx).map(|()| None),
                });
                match next.await {
                    Some(frame) => frame,
                    None => return Ok(Sent::PeerGone),
                }
            }
        };
        let data = match frame {
            None => break,
            Some(Err(err)) => return Err(io::Error::other(err.into())),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: hyper drops them too unless the client asked.
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        written += data.len() as u64;
        match framing {
            Framing::Length(length) if written > length => {
                return Err(io::Error::other("answer body longer than its length"));
            }
            Framing::Chunked => {
                let mut size = Vec::with_capacity(18);
                let _ = write!(size, "{:x}\r\n", data.len());
                let mut slices = [
                    IoSlice::new(&head),
                    IoSlice::new(&size),
                    IoSlice::new(&data),
                    IoSlice::new(b"\r\n"),
                ];
                write_all(stream, &mut slices).await?;
            }
            _ => write_all(stream, &mut [IoSlice::new(&head), IoSlice::new(&data)]).await?,
        }
        head.clear();
    }
    match framing {
        Framing::Length(length) if written != length => {
            return Err(io::Error::other("answer body shorter than its length"));
        }
        Framing::Chunked => {
            write_all(
                stream,
                &mut [IoSlice::new(&head), IoSlice::new(b"0\r\n\r\n")],
            )
            .await?
        }
        _ if !head.is_empty() => write_all(stream, &mut [IoSlice::new(&head)]).await?,
        _ => {}
    }
    Ok(if close { Sent::Close } else { Sent::KeepAlive })
}

fn framing(status: StatusCode, headers: &http::HeaderMap, exact: Option<u64>) -> Framing {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Framing::Empty;
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok().and_then(fields::content_length));
    match declared.or(exact) {
        Some(length) => Framing::Length(length),
        None => Framing::Chunked,
    }
}

fn has_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .any(|value| fields::has_token(value, "close"))
}

/// The status line and fields of an answer.
fn encode_head(
    status: StatusCode,
    headers: &http::HeaderMap,
    framing: Framing,
    close: bool,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut has_length = false;
    for (name, value) in headers {
        // The framing is this writer's to say.
        if *name == TRANSFER_ENCODING {
            continue;
        }
        if *name == CONTENT_LENGTH {
            if has_length || matches!(framing, Framing::Chunked) {
                continue;
            }
            has_length = true;
        }
        fields::write(&mut head, name.as_str(), value.as_bytes());
    }
    match framing {
        Framing::Length(length) if !has_length => {
            // Writing to a Vec cannot fail.
            let _ = write!(head, "content-length: {length}\r\n");
        }
        Framing::Chunked => fields::write(&mut head, "transfer-encoding", b"chunked"),
        _ => {}
    }
    if close && !has_close(headers) {
        fields::write(&mut head, "connection", b"close");
    }
    if !headers.contains_key(DATE) {
        DATE_NOW.with(|date| fields::write(&mut head, "date", date.borrow_mut().now().as_bytes()));
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes every byte of `slices`.
async fn write_all(stream: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        stream.writable().await?;
        match stream.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The `date` field, formatted once a second per thread.
struct DateNow {
    second: u64,
    value: HeaderValue,
}

impl DateNow {
    fn now(&mut self) -> &HeaderValue {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            let text = httpdate::fmt_http_date(now);
            if let Ok(value) = HeaderValue::from_str(&text) {
                self.value = value;
                self.second = second;
            }
        }
        &self.value
    }
}

thread_local! {
    static DATE_NOW: RefCell<DateNow> = const {
        RefCell::new(DateNow {
            second: u64::MAX,
            value: HeaderValue::from_static(""),
        })
    };
}

#[cfg(test)]
mod tests {
    use super::{Framing, encode_head, framing};
    use http::{HeaderMap, HeaderValue, StatusCode};

    fn text(head: &[u8]) -> String {
        String::from_utf8(head.to_vec()).unwrap()
    }

    #[test]
    fn a_known_length_is_sent_and_an_unknown_one_is_chunked() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        assert_eq!(
            framing(StatusCode::OK, &headers, Some(7)),
            Framing::Length(7)
        );
        assert_eq!(framing(StatusCode::OK, &headers, None), Framing::Chunked);
        assert_eq!(
            framing(StatusCode::NO_CONTENT, &headers, Some(0)),
            Framing::Empty
        );
        let head = text(&encode_head(
            StatusCode::OK,
            &headers,
            Framing::Length(7),
            false,
        ));
        assert!(
            head.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\ndate: "
            ),
            "{head}"
        );
        assert!(head.ends_with(" GMT\r\n\r\n"), "{head}");
        let head = text(&encode_head(
            StatusCode::ACCEPTED,
            &headers,
            Framing::Chunked,
            true,
        ));
        assert!(
            head.contains("\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"),
            "{head}"
        );
    }

    #[test]
    fn the_handlers_length_wins_and_its_framing_fields_are_not_repeated() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("3"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        assert_eq!(framing(StatusCode::OK, &headers, None), Framing::Length(3));
        let head = text(&encode_head(
            StatusCode::OK,
            &headers,
            Framing::Length(3),
            false,
        ));
        assert_eq!(head.matches("content-length").count(), 1, "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
    }
}
