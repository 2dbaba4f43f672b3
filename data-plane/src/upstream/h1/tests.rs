//! The client against members written byte by byte over real loopback
//! sockets: answers framed every way RFC 9112 allows, split anywhere, and
//! members that close connections under the pool.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Error, send};

const CONNECT: Duration = Duration::from_secs(5);

async fn member() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    (listener, url)
}

fn post(url: &str, body: &'static str) -> Request<Bytes> {
    Request::post(url)
        .header("content-type", "application/json")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

/// Reads one request (head and `Content-Length` body) off `stream`.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&read[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if read.len() >= end + 4 + length {
                return String::from_utf8_lossy(&read).into_owned();
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed mid-request");
        read.extend_from_slice(&chunk[..n]);
    }
}

async fn text(response: http::Response<super::Body>) -> Result<String, Error> {
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn calls_one_after_another_share_one_connection() {
    let (listener, url) = member().await;
    let (accepted, mut accepts) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            accepted.send(()).unwrap();
            tokio::spawn(async move {
                for n in 0.. {
                    let request = read_request(&mut stream).await;
                    assert!(request.starts_with("POST /mcp HTTP/1.1\r\n"), "{request}");
                    assert!(
                        request.contains("\r\ncontent-length: 2\r\n\r\n{}"),
                        "{request}"
                    );
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{n}");
                    stream.write_all(answer.as_bytes()).await.unwrap();
                }
            });
        }
    });
    for n in 0..3 {
        let response = send(post(&url, "{}"), CONNECT).await.unwrap();
        assert_eq!(response.headers()["content-length"], "1");
        assert_eq!(text(response).await.unwrap(), n.to_string());
    }
    accepts.recv().await.unwrap();
    assert!(accepts.try_recv().is_err(), "a second connection was made");
}

#[tokio::test]
async fn a_connection_the_member_closed_while_idle_is_not_used_again() {
    let (listener, url) = member().await;
    let (closed, mut closes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let closed = closed.clone();
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                stream.write_all(answer.as_bytes()).await.unwrap();
                // A member that restarted, or timed out its idle keep-alive.
                drop(stream);
                closed.send(()).unwrap();
            });
        }
    });
    for _ in 0..3 {
        let response = send(post(&url, "{}"), CONNECT).await.unwrap();
        assert_eq!(text(response).await.unwrap(), "ok");
        closes.recv().await.unwrap();
    }
}

#[tokio::test]
async fn a_chunked_answer_is_handed_on_as_its_chunks_arrive() {
    let (listener, url) = member().await;
    let (go_on, mut told) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    transfer-encoding: chunked\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(b"c\r\nevent: one\n\n\r\n").await.unwrap();
        told.recv().await.unwrap();
        // The rest split mid-size, mid-data and mid-terminator.
        for piece in [&b"c\r"[..], b"\nevent: t", b"wo\n\n\r", b"\n0\r\n", b"\r\n"] {
            stream.write_all(piece).await.unwrap();
            stream.flush().await.unwrap();
        }
        read_request(&mut stream).await;
        let answer = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
        stream.write_all(answer.as_bytes()).await.unwrap();
    });
    let mut body = send(post(&url, "{}"), CONNECT).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "event: one\n\n");
    go_on.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "event: two\n\n");
    // The stream ended cleanly, so its connection carries the next call.
    let accepted = send(post(&url, "{}"), CONNECT).await.unwrap();
    assert_eq!(accepted.status(), 202);
}

#[tokio::test]
async fn an_answer_cut_short_fails_and_its_connection_is_dropped() {
    let (listener, url) = member().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
        stream.write_all(answer.as_bytes()).await.unwrap();
        drop(stream);
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        let answer = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
        stream.write_all(answer.as_bytes()).await.unwrap();
    });
    let response = send(post(&url, "{}"), CONNECT).await.unwrap();
    assert!(matches!(text(response).await, Err(Error::Closed)));
    // Unframed: the body is everything until the member closes.
    let response = send(post(&url, "{}"), CONNECT).await.unwrap();
    assert_eq!(text(response).await.unwrap(), "until the end");
}

#[tokio::test]
async fn a_member_that_is_not_listening_is_a_connect_error() {
    let (listener, url) = member().await;
    drop(listener);
    let failed = send(post(&url, "{}"), CONNECT).await.unwrap_err();
    assert!(failed.is_connect(), "{failed:?}");
}

#[tokio::test]
async fn interim_answers_are_skipped_and_garbage_is_refused() {
    let (listener, url) = member().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        let answer = "HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n\
                      HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        stream.write_all(answer.as_bytes()).await.unwrap();
        read_request(&mut stream).await;
        stream.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await.unwrap();
    });
    let response = send(post(&url, "{}"), CONNECT).await.unwrap();
    assert_eq!(text(response).await.unwrap(), "ok");
    let failed = send(post(&url, "{}"), CONNECT).await.unwrap_err();
    assert!(matches!(failed, Error::Invalid(_)), "{failed:?}");
}

#[tokio::test]
async fn a_large_body_arrives_whole() {
    let (listener, url) = member().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await;
        let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{}",
            body.len().to_string().len(),
            body.len()
        );
        stream.write_all(answer.as_bytes()).await.unwrap();
    });
    let body = Bytes::from(vec![b'x'; 300_000]);
    let request = Request::post(&url).body(body).unwrap();
    let response = send(request, CONNECT).await.unwrap();
    assert_eq!(text(response).await.unwrap(), "300000");
}
