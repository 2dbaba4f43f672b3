//! What a read tells the runtime about a socket, shared by the client
//! front's reads and the member client's.

use std::io;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Tells the runtime that `stream` has nothing more to read, after a read
/// that did not fill its buffer, instead of learning it from one more read
/// (which would only say `WouldBlock`): the next read then waits for
/// epoll, one system call less. Data that arrives later is a new edge
/// epoll reports (the runtime has not polled since the read, so the
/// readiness cleared is the one the read used), and a close stays known
/// (the runtime never clears it).
pub(crate) fn drained(stream: &TcpStream) {
    let _ = stream.try_io(Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}
