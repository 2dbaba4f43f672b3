//! Log lines of one test, captured from its own thread (a current-thread
//! test runtime) while other tests of the binary run beside it.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

/// Logs of this thread (a current-thread test runtime) from now on, until
/// the guard is dropped.
///
/// One global subscriber serves every test of this binary and writes to the
/// sink of the thread that logs. A scoped subscriber per test (`set_default`)
/// would race with other test threads over tracing's cached callsite
/// interest and could lose the member's span from the captured lines.
pub(crate) fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, CaptureGuard) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| Captured)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    let log = Arc::new(Mutex::new(Vec::new()));
    SINK.with(|sink| *sink.borrow_mut() = Some(log.clone()));
    (log, CaptureGuard)
}

thread_local! {
    /// Where this thread's log lines go; none when the test does not read them.
    static SINK: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Stops capturing this thread's logs when dropped.
pub(crate) struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

/// Log output kept for the test running on this thread, if it reads it.
struct Captured;

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(log) = sink.borrow().as_ref() {
                log.lock().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
