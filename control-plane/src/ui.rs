//! The status page, on the gRPC listener beside `/metrics`: a read-only
//! view of the rollup `hangarctl status` prints, kept live.
//!
//! - `GET /`: the page (`ui/page.html`), its script `GET /status/app.js`
//!   and style `GET /status/style.css`, all embedded in the binary.
//! - `GET /status.json`: the status once ([`view::StatusView`]).
//! - `GET /status/events`: the same as server-sent events, an `event:
//!   status` at once, on every change (settled for 200 ms) and at least
//!   every second; at most [`MAX_VIEWERS`] streams at a time.
//!
//! With `--admin-token-file` each of them takes the admin token, like the
//! admin API: `Authorization: Bearer TOKEN`, or the cookie a browser gets
//! by opening `/?token=TOKEN` once, which answers with the cookie and a
//! redirect to `/`, so the token leaves the address bar. The cookie is
//! `HttpOnly` (the page's script never sees it), `SameSite=Strict`,
//! `Secure` under TLS, and lasts as long as the browser session. Without
//! the token the page answers 401 with a form that asks for it. A control
//! plane without an admin token serves these only to a loopback `Host`, so
//! that a web page elsewhere cannot read them through DNS rebinding.
//!
//! Every answer forbids caching, sniffing and framing, and the page's
//! Content-Security-Policy allows only its own script, style and
//! same-origin requests: the script builds the page with `textContent`,
//! so no value from the fleet is ever read as HTML.

mod view;

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{StatusCode, uri::Authority};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use hangar_proto::auth::Token;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Access;
use crate::status;

/// The live streams served at once; a further viewer gets 503.
pub(crate) const MAX_VIEWERS: usize = 16;
/// A live stream gets a fresh status at least this often (ages move on).
const LIVE_REFRESH: Duration = Duration::from_secs(1);
/// How soon a browser reconnects a live stream that broke.
const RECONNECT: Duration = Duration::from_secs(2);
/// The cookie that carries the admin token for the page's own requests.
const COOKIE: &str = "hangar_admin_token";

const PAGE: &str = include_str!("ui/page.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/style.css");
const LOGIN: &str = include_str!("ui/login.html");

/// Only the page's own files and same-origin requests, no inline code,
/// no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the status page's handlers share.
#[derive(Debug)]
pub(crate) struct Ui {
    status: status::Source,
    gate: Gate,
    viewers: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl Ui {
    /// The page over `status`, guarded by the admin token of `access`;
    /// its live streams end when `shutdown` is cancelled.
    pub(crate) fn new(
        status: status::Source,
        access: Arc<Access>,
        tls: bool,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            status,
            gate: Gate { access, tls },
            viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
            shutdown,
        }
    }
}

/// Who may read the page.
#[derive(Debug)]
struct Gate {
    access: Arc<Access>,
    /// Served over TLS: the cookie is `Secure`.
    tls: bool,
}

impl Gate {
    /// Whether the request may read the status, and if not why.
    fn admit(&self, request: &Request) -> Result<(), Refusal> {
        if self.access.admin_token.is_none() {
            return if loopback_host(request) {
                Ok(())
            } else {
                Err(Refusal::NotLoopback)
            };
        }
        let presented = bearer(request.headers()).or_else(|| cookie(request.headers()));
        self.judge(presented.as_deref())
    }

    /// Whether `presented` is the admin token; only with one set.
    fn judge(&self, presented: Option<&str>) -> Result<(), Refusal> {
        let is = |token: &Option<Token>, presented: &str| {
            token.as_ref().is_some_and(|t| t.matches(presented))
        };
        match presented {
            Some(token) if is(&self.access.admin_token, token) => Ok(()),
            Some(token) if is(&self.access.dataplane_token, token) => Err(Refusal::DataPlaneToken),
            Some(_) => Err(Refusal::WrongToken),
            None => Err(Refusal::NoToken),
        }
    }

    /// `Set-Cookie` for `token`.
    fn cookie_for(&self, token: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        let value = URL_SAFE_NO_PAD.encode(token);
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}")
    }
}

/// Why a request may not read the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NoToken,
    WrongToken,
    DataPlaneToken,
    NotLoopback,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Self::NoToken | Self::WrongToken => StatusCode::UNAUTHORIZED,
            Self::DataPlaneToken | Self::NotLoopback => StatusCode::FORBIDDEN,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::NoToken => {
                "the status page needs the admin token: send Authorization: Bearer TOKEN, or open /?token=TOKEN once in a browser"
            }
            Self::WrongToken => "wrong token for the status page",
            Self::DataPlaneToken => {
                "a data-plane token cannot read the status page; use the admin token"
            }
            Self::NotLoopback => {
                "without --admin-token-file the status page answers only to a loopback host (127.0.0.1, localhost)"
            }
        }
    }

    /// The answer to a data request: the reason in plain text.
    fn plain(self) -> Response {
        let mut response = (self.status(), self.words()).into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    /// The answer to the page itself: a form asking for the token.
    fn page(self) -> Response {
        if self == Self::NotLoopback {
            return self.plain();
        }
        let body = LOGIN.replace("{{reason}}", self.words());
        (
            self.status(),
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// `GET /`, `/status/…` and `/status.json`; every answer gets the
/// headers of [`secure`].
pub(crate) fn router(ui: Ui) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status/app.js", get(script))
        .route("/status/style.css", get(style))
        .route("/status.json", get(json))
        .route("/status/events", get(events))
        .layer(axum::middleware::map_response(secure))
        .with_state(Arc::new(ui))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    token: Option<String>,
}

async fn page(
    State(ui): State<Arc<Ui>>,
    Query(query): Query<PageQuery>,
    request: Request,
) -> Response {
    let gate = &ui.gate;
    if let (Some(_), Some(token)) = (&gate.access.admin_token, &query.token) {
        if let Err(refusal) = gate.judge(Some(token)) {
            return refusal.page();
        }
        // See Other: the browser loads `/` afresh, with the cookie and
        // without the token in its address bar and history.
        let cookie = gate.cookie_for(token);
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_owned()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response();
    }
    match gate.admit(&request) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response(),
        Err(refusal) => refusal.page(),
    }
}

/// The script and style hold nothing of the fleet: they need no token,
/// and the login form can use the style.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn json(State(ui): State<Arc<Ui>>, request: Request) -> Response {
    if let Err(refusal) = ui.gate.admit(&request) {
        return refusal.plain();
    }
    let gathered = ui.status.gather().await;
    axum::Json(view::build(&gathered, Instant::now())).into_response()
}

async fn events(State(ui): State<Arc<Ui>>, request: Request) -> Response {
    if let Err(refusal) = ui.gate.admit(&request) {
        return refusal.plain();
    }
    let Ok(permit) = ui.viewers.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live status streams; try again later or read /status.json",
        )
            .into_response();
    };
    let feed = Feed {
        changes: ui.status.changes(LIVE_REFRESH),
        ui: ui.clone(),
        first: true,
        _permit: permit,
    };
    let stream =
        futures::stream::unfold(feed, Feed::next).take_until(ui.shutdown.clone().cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One viewer's live stream; its permit returns when the stream is dropped.
struct Feed {
    ui: Arc<Ui>,
    changes: status::Changes,
    first: bool,
    _permit: OwnedSemaphorePermit,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if !std::mem::take(&mut self.first) && !self.changes.next().await {
            return None;
        }
        let gathered = self.ui.status.gather().await;
        let view = view::build(&gathered, Instant::now());
        let event = match Event::default()
            .event("status")
            .retry(RECONNECT)
            .json_data(&view)
        {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "cannot encode the status for the status page");
                Event::default().comment("status unavailable")
            }
        };
        Some((Ok(event), self))
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("first", &self.first)
            .finish_non_exhaustive()
    }
}

/// The headers of every answer of the page: no caching (status moves on,
/// and may be private), no sniffing, no framing, the page's CSP.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The token of the page's cookie, from any `Cookie` header (HTTP/2 may
/// send several).
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
        .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Whether the request names this host by a loopback address or
/// `localhost`: the target's authority (HTTP/2), else the `Host` header.
fn loopback_host(request: &Request) -> bool {
    let authority = match request.uri().authority() {
        Some(authority) => Some(authority.clone()),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| Authority::from_str(host).ok()),
    };
    authority.is_some_and(|authority| {
        let host = authority.host();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, headers: &[(&str, &str)]) -> Request {
        let mut builder = axum::http::Request::builder().uri("/status.json");
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    fn gate(admin: Option<&str>) -> Gate {
        let token = |text| Some(Token::new(text, "test").unwrap());
        let access = Access {
            admin_token: admin.and_then(token),
            dataplane_token: token("dp-secret"),
        };
        Gate {
            access: Arc::new(access),
            tls: true,
        }
    }

    #[test]
    fn an_open_page_answers_only_to_loopback_names() {
        let open = gate(None);
        for host in [
            "127.0.0.1:7070",
            "localhost:7070",
            "[::1]:7070",
            "LOCALHOST",
        ] {
            assert_eq!(open.admit(&request(Some(host), &[])), Ok(()), "{host}");
        }
        let elsewhere = [
            None,
            Some("evil.example:7070"),
            Some("127.0.0.1.evil.example"),
            Some("10.0.0.5:7070"),
            Some("not a host"),
        ];
        for host in elsewhere {
            let refused = open.admit(&request(host, &[]));
            assert_eq!(refused, Err(Refusal::NotLoopback), "{host:?}");
        }
    }

    #[test]
    fn a_guarded_page_takes_the_admin_token_by_header_or_cookie() {
        let guarded = gate(Some("admin;secret"));
        let set_cookie = guarded.cookie_for("admin;secret");
        assert!(
            set_cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Secure"),
            "{set_cookie}"
        );
        let pair = set_cookie.split(';').next().unwrap();
        let cookies = format!("other=1; {pair}");
        let cases: [(&[(&str, &str)], _); 6] = [
            (&[("authorization", "Bearer admin;secret")], Ok(())),
            (&[("cookie", &cookies)], Ok(())),
            (&[], Err(Refusal::NoToken)),
            (
                &[("authorization", "Bearer guess")],
                Err(Refusal::WrongToken),
            ),
            (
                &[("authorization", "Bearer dp-secret")],
                Err(Refusal::DataPlaneToken),
            ),
            (
                &[("cookie", "hangar_admin_token=%%%")],
                Err(Refusal::NoToken),
            ),
        ];
        for (headers, expected) in cases {
            let verdict = guarded.admit(&request(Some("evil.example"), headers));
            assert_eq!(verdict, expected, "{headers:?}");
        }
    }
}
