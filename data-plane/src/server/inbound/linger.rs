//! Lingering close, as nginx does it: a connection that ends with the
//! client's request body unread (a body refused for its size before it
//! all came) keeps reading, and dropping, what the client still sends for
//! a little while before it closes.
//!
//! Closing a socket with unread data makes the kernel reset the
//! connection, and a reset makes the client's kernel discard what it had
//! received but its application had not read yet: the answer. A client
//! still writing its body (reqwest with a 5 MiB body, say) would see
//! "connection reset" instead of the 413. Shutting down the writing side
//! first tells the client its answer is whole.

use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::net::TcpStream;

/// The longest a closing connection keeps reading.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// The most a closing connection reads before it closes anyway, so a
/// client that keeps sending cannot hold it for the whole time at full
/// speed.
const LINGER_BYTES: usize = 64 << 20;

/// What one read takes; on the heap, so connection tasks that never
/// linger do not carry it.
const READ: usize = 16 * 1024;

/// Ends the sending side of `stream`, then reads and drops what the
/// client sends until it closes, [`LINGER_TIME`] passes or
/// [`LINGER_BYTES`] were read.
pub(super) async fn linger(stream: &TcpStream) {
    if nix::sys::socket::shutdown(stream.as_raw_fd(), nix::sys::socket::Shutdown::Write).is_err() {
        return;
    }
    let drain = async {
        let mut buf = vec![0u8; READ];
        let mut read = 0;
        while read < LINGER_BYTES {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => read += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
