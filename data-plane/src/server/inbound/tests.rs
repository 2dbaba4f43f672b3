//! The inbound loop over real loopback connections, driven by a client
//! that writes raw bytes, against a small service: what a client sees on
//! keep-alive, bodies in pieces, pipelining, requests hyper takes over, a
//! client that leaves mid-call, streamed answers and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{HeadLimits, Service, serve};
use crate::upstream::error::BoxError;

type TestBody = BoxBody<Bytes, BoxError>;

/// Echoes POST bodies on `/echo`, refuses `/refuse` unread, says which
/// method hyper served elsewhere, holds `/hang` until dropped and streams
/// `/stream` from the test's channel.
#[derive(Clone, Default)]
struct TestService {
    /// Told when a held call is dropped.
    hang_dropped: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    stream_frames: Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>,
    /// Told when a call begins.
    started: Arc<Notify>,
}

struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tell) = self.0.take() {
            let _ = tell.send(());
        }
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<TestBody> {
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

impl Service for TestService {
    type ResBody = TestBody;

    fn call<B>(&self, request: Request<B>) -> impl Future<Output = Response<TestBody>> + Send
    where
        B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static,
    {
        let this = self.clone();
        self.started.notify_one();
        async move {
            match (request.method().clone(), request.uri().path()) {
                (Method::POST, "/echo") => match request.into_body().collect().await {
                    Ok(body) => full(StatusCode::OK, body.to_bytes()),
                    Err(_) => full(StatusCode::BAD_REQUEST, "broken body"),
                },
                // Refuses without reading the body, as the guard refuses
                // a declared length over its limit.
                (Method::POST, "/refuse") => full(StatusCode::PAYLOAD_TOO_LARGE, "too large"),
                (Method::POST, "/hang") => {
                    let _signal = DropSignal(this.hang_dropped.lock().take());
                    std::future::pending().await
                }
                (Method::POST, "/stream") => {
                    let frames = this.stream_frames.lock().take().expect("one stream");
                    let frames = futures::stream::unfold(frames, |mut frames| async move {
                        let frame = frames.recv().await?;
                        Some((Ok::<_, BoxError>(http_body::Frame::data(frame)), frames))
                    });
                    let mut response = Response::new(StreamBody::new(frames).boxed());
                    response
                        .headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    response
                }
                (method, _) => full(StatusCode::OK, format!("hyper served {method}")),
            }
        }
    }
}

/// A listener serving every connection with `service`, and its shutdown.
async fn start(service: TestService) -> (std::net::SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut hyper = auto::Builder::new(TokioExecutor::new());
    // As the listener sets it: the head must fit in hyper's read buffer.
    hyper.http1().max_buf_size(8 * 1024);
    let hyper = Arc::new(hyper);
    let limits = HeadLimits {
        max_headers: 100,
        max_bytes: 8 * 1024,
    };
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(
                stream,
                service.clone(),
                hyper.clone(),
                limits,
                stop.clone(),
            ));
        }
    });
    (addr, shutdown)
}

/// A client reading answers off a raw connection.
struct Client {
    stream: TcpStream,
    read: Vec<u8>,
}

/// One answer: its status, its head's text, its body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            read: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more; false at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.read.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn head(&mut self) -> (u16, String) {
        loop {
            if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.read.drain(..end + 4).collect()).unwrap();
                let status = head[9..12].parse().unwrap();
                return (status, head.to_ascii_lowercase());
            }
            assert!(self.fill().await, "connection closed before a head");
        }
    }

    async fn answer(&mut self) -> Answer {
        let (status, head) = self.head().await;
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .map(|n| n.trim().parse::<usize>().unwrap());
        let body = match length {
            Some(length) => {
                while self.read.len() < length {
                    assert!(self.fill().await, "connection closed mid-body");
                }
                self.read.drain(..length).collect()
            }
            None => {
                assert!(head.contains("transfer-encoding: chunked"), "{head}");
                loop {
                    if let Some(end) = self.read.windows(5).position(|w| w == b"0\r\n\r\n") {
                        break self.read.drain(..end + 5).collect();
                    }
                    assert!(self.fill().await, "connection closed mid-body");
                }
            }
        };
        Answer { status, head, body }
    }

    /// Whether the data plane closes the connection (nothing more comes).
    async fn closes(&mut self) -> bool {
        !self.fill().await && self.read.is_empty()
    }
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn calls_on_one_connection_are_answered_with_their_length() {
    let (addr, _shutdown) = start(TestService::default()).await;
    let mut client = Client::connect(addr).await;
    for body in ["{\"id\":1}", "{\"id\":2,\"more\":true}"] {
        client.send(&post("/echo", body)).await;
        let answer = client.answer().await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, body.as_bytes());
        assert!(
            answer
                .head
                .contains(&format!("content-length: {}\r\n", body.len())),
            "{}",
            answer.head
        );
        assert!(answer.head.contains("\r\ndate: "), "{}", answer.head);
        assert!(
            !answer.head.contains("transfer-encoding"),
            "{}",
            answer.head
        );
    }
}

#[tokio::test]
async fn a_body_sent_after_its_head_and_pipelined_calls_are_each_answered() {
    let (addr, _shutdown) = start(TestService::default()).await;
    let mut client = Client::connect(addr).await;
    let request = post("/echo", "{\"late\":1}");
    let (head, body) = request.split_at(request.len() - 10);
    client.send(head).await;
    tokio::task::yield_now().await;
    client.send(&body[..4]).await;
    client.send(&body[4..]).await;
    assert_eq!(client.answer().await.body, b"{\"late\":1}");

    let mut two = post("/echo", "first");
    two.extend(post("/echo", "second"));
    client.send(&two).await;
    assert_eq!(client.answer().await.body, b"first");
    assert_eq!(client.answer().await.body, b"second");
}

#[tokio::test]
async fn requests_of_other_shapes_are_served_by_hyper_on_the_same_connection() {
    let (addr, _shutdown) = start(TestService::default()).await;
    let mut client = Client::connect(addr).await;
    client.send(&post("/echo", "ours")).await;
    assert_eq!(client.answer().await.body, b"ours");
    client
        .send(b"GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(client.answer().await.body, b"hyper served GET");
    // The rest of the connection is hyper's, POSTs too.
    client
        .send(b"POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n4\r\nchnk\r\n0\r\n\r\n")
        .await;
    assert_eq!(client.answer().await.body, b"chnk");

    let mut huge = Client::connect(addr).await;
    let field = "x".repeat(9 * 1024);
    huge.send(format!("POST /echo HTTP/1.1\r\nx-big: {field}\r\n\r\n").as_bytes())
        .await;
    assert_eq!(
        huge.head().await.0,
        431,
        "hyper's answer to a head over the limit"
    );
}

#[tokio::test]
async fn a_client_that_leaves_mid_call_ends_its_call() {
    let service = TestService::default();
    let (dropped_tx, dropped) = oneshot::channel();
    *service.hang_dropped.lock() = Some(dropped_tx);
    let started = service.started.clone();
    let (addr, _shutdown) = start(service).await;
    let mut client = Client::connect(addr).await;
    client.send(&post("/hang", "{}")).await;
    started.notified().await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the call is dropped when its client leaves")
        .unwrap();
}

#[tokio::test]
async fn a_streamed_answer_sends_its_head_before_its_first_frame() {
    let service = TestService::default();
    let (frames, receiver) = mpsc::channel(4);
    *service.stream_frames.lock() = Some(receiver);
    let (addr, _shutdown) = start(service).await;
    let mut client = Client::connect(addr).await;
    client.send(&post("/stream", "{}")).await;
    let (status, head) = client.head().await;
    assert_eq!(status, 200);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    frames
        .send(Bytes::from_static(b"data: 1\n\n"))
        .await
        .unwrap();
    drop(frames);
    let mut rest = Vec::new();
    while !rest.ends_with(b"0\r\n\r\n") {
        assert!(client.fill().await);
        rest = client.read.clone();
    }
    assert_eq!(rest, b"9\r\ndata: 1\n\n\r\n0\r\n\r\n");
}

#[tokio::test]
async fn on_shutdown_an_idle_connection_closes_and_a_busy_one_after_its_answer() {
    let service = TestService::default();
    let (frames, receiver) = mpsc::channel(4);
    *service.stream_frames.lock() = Some(receiver);
    let (addr, shutdown) = start(service).await;
    let mut idle = Client::connect(addr).await;
    idle.send(&post("/echo", "x")).await;
    idle.answer().await;
    let mut busy = Client::connect(addr).await;
    busy.send(&post("/stream", "{}")).await;
    busy.head().await;

    shutdown.cancel();
    assert!(idle.closes().await, "an idle connection closes at once");
    frames.send(Bytes::from_static(b"last")).await.unwrap();
    drop(frames);
    while !busy.read.ends_with(b"0\r\n\r\n") {
        assert!(busy.fill().await, "the answer in progress is finished");
    }
    busy.read.clear();
    assert!(busy.closes().await, "then the connection closes");
}

#[tokio::test]
async fn a_new_answer_during_shutdown_says_the_connection_closes() {
    let service = TestService::default();
    let started = service.started.clone();
    let (addr, shutdown) = start(service).await;
    let mut client = Client::connect(addr).await;
    // A call under way, its body still on its way, when shutdown begins.
    let request = post("/echo", "bb");
    let (head, body) = request.split_at(request.len() - 2);
    client.send(head).await;
    started.notified().await;
    shutdown.cancel();
    client.send(body).await;
    let answer = client.answer().await;
    assert_eq!(answer.body, b"bb");
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert!(client.closes().await);
}

#[tokio::test]
async fn an_answer_to_a_body_left_unread_says_the_connection_closes() {
    let (addr, _shutdown) = start(TestService::default()).await;
    let mut client = Client::connect(addr).await;
    // The head declares a body the client never sends.
    client
        .send(b"POST /refuse HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
        .await;
    let answer = client.answer().await;
    assert_eq!(answer.status, 413);
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert!(client.closes().await, "the unread body cannot be skipped");
}
