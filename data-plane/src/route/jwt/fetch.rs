//! Keeps the key set of `auth.jwt.jwks_url` fresh: fetched when the URL is
//! configured, again every [`REFRESH`], and at once when a token names a
//! key the set lacks (the identity provider rotated its keys). A failed
//! fetch keeps the keys there were and tries again sooner; the last good
//! set is also kept in `--cache-dir`, so a restarted data plane takes
//! tokens while the identity provider is away.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hangar_proto::v1;
use tokio_util::sync::CancellationToken;

use crate::control::cache::SnapshotCache;
use crate::route::jwt::JwtBook;

/// How often a key set is fetched again.
const REFRESH: Duration = Duration::from_secs(300);
/// Retry delays after a failed fetch: doubling from the first to the last.
const RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest key set taken.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Follows the configured URL of `book` until `shutdown`.
pub(crate) async fn run(
    book: Arc<JwtBook>,
    cache: Option<SnapshotCache>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder().timeout(FETCH_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %hangar_runtime::error_chain(&err), "cannot build the HTTP client for auth.jwt.jwks_url");
            return;
        }
    };
    let mut url = book.watch_url();
    let mut restored = false;
    let mut retry = RETRY.0;
    loop {
        let current = url.borrow_and_update().clone();
        let wait = match current {
            None => None,
            Some(target) => {
                if !restored {
                    restored = true;
                    restore(&book, cache.as_ref(), &target);
                }
                match fetch(&client, &target).await {
                    Ok(jwks) => match book.install_fetched(&target, &jwks) {
                        Ok(count) => {
                            tracing::info!(jwks.url = %target, jwks.keys = count, "fetched the signing keys of auth.jwt");
                            if let Some(Err(err)) = cache.as_ref().map(|c| {
                                c.save_jwks(&v1::JwtAuth {
                                    jwks_url: target.clone(),
                                    jwks_json: jwks,
                                    ..Default::default()
                                })
                            }) {
                                tracing::warn!(error = %hangar_runtime::error_chain(&err), "cannot write the signing keys to the cache");
                            }
                            retry = RETRY.0;
                            Some(REFRESH)
                        }
                        Err(why) => {
                            tracing::warn!(jwks.url = %target, %why, "auth.jwt.jwks_url answered something that is not a key set; keeping the keys there were");
                            Some(backoff(&mut retry))
                        }
                    },
                    Err(why) => {
                        tracing::warn!(jwks.url = %target, %why, "cannot fetch the signing keys of auth.jwt; keeping the keys there were");
                        Some(backoff(&mut retry))
                    }
                }
            }
        };
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = book.refetch_wanted() => {}
            changed = url.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// The next retry delay, doubling up to the last.
fn backoff(retry: &mut Duration) -> Duration {
    let wait = *retry;
    *retry = (*retry * 2).min(RETRY.1);
    wait
}

/// Installs the cached key set of `url`, if there is one.
fn restore(book: &JwtBook, cache: Option<&SnapshotCache>, url: &str) {
    let Some(cache) = cache else { return };
    match cache.load_jwks() {
        Ok(Some(cached)) if cached.jwks_url == url => {
            if let Err(why) = book.install_fetched(url, &cached.jwks_json) {
                tracing::warn!(%why, "ignoring the cached signing keys");
            }
        }
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(error = %hangar_runtime::error_chain(&err), "ignoring the cached signing keys")
        }
    }
}

/// The body of `url`, if it answers 200 with at most [`MAX_JWKS_BYTES`].
async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| hangar_runtime::error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("it answered {status}"));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| hangar_runtime::error_chain(&e))?;
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "the key set is not UTF-8".to_owned())
}
