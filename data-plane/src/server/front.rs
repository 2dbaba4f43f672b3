//! The data plane's request front: every request is admitted (see
//! [`Admission`]), then `/groups/{group}/mcp` is served by the transparent
//! proxy after the guard, a `hangar_call` on `/mcp` after the guard by
//! [`DirectCalls`], and anything else (the rest of `/mcp`, `/metrics`) by
//! the axum router.
//!
//! Both hot paths skip the router: route matching, the router's layers and
//! their boxed futures were a visible share of the CPU and memory of every
//! call.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use http::{Request, Response};
use tower::ServiceExt;

use crate::endpoint::groups;
use crate::endpoint::mcp::direct::DirectCalls;
use crate::observe::{Finish, Observed, Observer, RequestHead};
use crate::route::table::Routes;
use crate::server::anonymous::{AnonymousClients, is_mcp, unauthorized};
use crate::server::body::Holding;
use crate::server::caller::ClientAddr;
use crate::server::client_auth::{self, Verdict};
use crate::server::connections::{Conn, InProgress};
use crate::server::guard::{self, Guard};
use crate::server::inbound;
use crate::server::overload::{Admission, Admitted};
use crate::server::resource_metadata;
use crate::upstream::error::BoxError;

/// An answer, holding its request's admission and its place among its
/// connection's requests in progress until it is sent.
/// With it, the end of the request's observation (its span, its
/// access-log line), dropped last.
pub(crate) type FrontResponse = Response<FrontBody>;

/// The body of a [`FrontResponse`].
pub(crate) type FrontBody = Holding<(Option<Admitted>, InProgress, Option<Finish>)>;

/// What every connection is served by (see [`Front::for_connection`]).
#[derive(Debug, Clone)]
pub(crate) struct Front(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    admission: Admission,
    anonymous: AnonymousClients,
    guard: Guard,
    routes: Arc<Routes>,
    /// Traces and the access log.
    observer: Observer,
    /// The common `hangar_call` on `/mcp`.
    direct: DirectCalls,
    /// Everything else.
    router: Router,
}

// === impl Front ===

impl Front {
    /// Admits with `admission`, checks group requests and `/mcp` with
    /// `guard`, proxies group requests over `routes` and serves what it
    /// can of `/mcp` with `direct`; hands the rest to `router`, which
    /// guards what the front did not.
    pub(crate) fn new(
        admission: Admission,
        anonymous: AnonymousClients,
        guard: Guard,
        (routes, direct): (Arc<Routes>, DirectCalls),
        router: Router,
        observer: Observer,
    ) -> Self {
        Self(Arc::new(Inner {
            admission,
            anonymous,
            guard,
            routes,
            observer,
            direct,
            router,
        }))
    }

    /// The admission every request goes through.
    pub(crate) fn admission(&self) -> &Admission {
        &self.0.admission
    }

    /// The service of one connection, which counts its requests in
    /// progress on `conn` (see [`Conn`]).
    pub(crate) fn for_connection(&self, conn: Arc<Conn>, peer: Option<IpAddr>) -> ConnFront {
        ConnFront {
            inner: self.0.clone(),
            conn,
            peer: peer.map(ClientAddr),
        }
    }
}

/// The service of one connection, whichever server reads its requests
/// (see `server::inbound`).
#[derive(Debug, Clone)]
pub(crate) struct ConnFront {
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    /// Where the connection comes from, for per-caller rate limits.
    peer: Option<ClientAddr>,
}

impl inbound::Service for ConnFront {
    type ResBody = FrontBody;

    fn call<B>(&self, mut request: Request<B>) -> impl Future<Output = FrontResponse> + Send
    where
        B: HttpBody<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static,
    {
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(peer);
        }
        let inner = self.inner.clone();
        let in_progress = self.conn.begin();
        async move { inner.serve(request, in_progress).await }
    }
}

impl Inner {
    async fn serve<B>(&self, request: Request<B>, in_progress: InProgress) -> FrontResponse
    where
        B: HttpBody<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static,
    {
        let path = request.uri().path();
        if resource_metadata::is_metadata(path) {
            let table = self.routes.load();
            let answer = resource_metadata::serve(&table, request.headers(), path);
            return answer.map(|body| Holding::new(body, (None, in_progress, None)));
        }
        if !is_mcp(path) {
            let Some(admitted) = self.admission.try_admit(request.method()) else {
                let refused = self.admission.refuse(request.map(Body::new)).await;
                return refused.map(|body| Holding::new(body, (None, in_progress, None)));
            };
            let response = self.route(request.map(Body::new)).await;
            return response.map(|body| Holding::new(body, (Some(admitted), in_progress, None)));
        }
        let group = group_of(path);
        let observed = self.observer.begin(RequestHead {
            method: request.method(),
            route: match &group {
                Some(_) => GROUP_ROUTE,
                None if path == MCP_PATH => MCP_PATH,
                None => NO_ENDPOINT,
            },
            group: group.as_deref(),
            headers: request.headers(),
            client: request.extensions().get::<ClientAddr>().map(|a| a.0),
        });
        let (response, admitted) = observed
            .serve(self.serve_mcp(request, group, &observed))
            .await;
        let finish = observed.answered(response.status());
        response.map(|body| Holding::new(body, (admitted, in_progress, finish)))
    }

    /// A request to an MCP endpoint: authenticated, admitted, guarded,
    /// then served by the group endpoint, the direct `hangar_call` or the
    /// router; with its admission, to hold until the answer is sent.
    async fn serve_mcp<B>(
        &self,
        mut request: Request<B>,
        group: Option<String>,
        observed: &Observed,
    ) -> (axum::response::Response, Option<Admitted>)
    where
        B: HttpBody<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static,
    {
        let table = self.routes.load();
        match table.client_auth.as_ref().filter(|auth| auth.enabled) {
            Some(auth) => {
                let verdict = client_auth::authenticate(
                    auth,
                    self.routes.api_keys(),
                    self.routes.jwt(),
                    request.headers(),
                )
                .await;
                match verdict {
                    Verdict::Admit(Some(principal)) => {
                        observed.principal(&principal.name);
                        request.extensions_mut().insert(principal);
                    }
                    Verdict::Admit(None) => {}
                    Verdict::Refuse(refusal) => {
                        let challenge = resource_metadata::challenge(
                            Some(auth),
                            request.headers(),
                            request.uri().path(),
                            refusal.invalid_token.then_some(refusal.reason.as_str()),
                        );
                        let refused =
                            unauthorized(request.map(Body::new), &refusal.reason, challenge).await;
                        return (refused, None);
                    }
                }
            }
            None if self.anonymous.refuses(request.uri().path()) => {
                return (self.anonymous.refuse(request.map(Body::new)).await, None);
            }
            None => {}
        }
        drop(table);
        let Some(admitted) = self.admission.try_admit(request.method()) else {
            return (self.admission.refuse(request.map(Body::new)).await, None);
        };
        if group.is_none() && request.uri().path() != MCP_PATH {
            // Not an endpoint: the router answers.
            return (self.route(request.map(Body::new)).await, Some(admitted));
        }
        let checked = match guard::check_request(&self.guard, request).await {
            Ok(checked) => checked,
            Err(refused) => return (refused, Some(admitted)),
        };
        observed.read(checked.peek.as_ref(), &checked.parts.headers);
        let response = match group {
            Some(group) => groups::handle(&self.routes, &group, checked).await,
            None => match self.direct.serve(checked).await {
                Ok(answer) => answer,
                Err(checked) => {
                    let (mut request, charged) = checked.into_request();
                    if let Some(context) = observed.context() {
                        // The library serves the call in its session's
                        // task, where this context is not current.
                        request.extensions_mut().insert(context.clone());
                    }
                    let response = self.route(request).await;
                    drop(charged);
                    response
                }
            },
        };
        (response, Some(admitted))
    }

    /// `request` served by the router.
    async fn route(&self, request: Request<Body>) -> axum::response::Response {
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// The path of the data plane's own MCP server.
const MCP_PATH: &str = "/mcp";

/// The route of the group endpoints, as spans name it.
const GROUP_ROUTE: &str = "/groups/{group}/mcp";

/// How spans name a path under `/groups/` that is no group's endpoint.
const NO_ENDPOINT: &str = "(no endpoint)";

/// The group named by a `/groups/{group}/mcp` path, percent-decoded; `None`
/// for any other path, and for a name that is not UTF-8 (the router
/// answers those).
fn group_of(path: &str) -> Option<String> {
    let name = path.strip_prefix("/groups/")?.strip_suffix("/mcp")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn finds_the_group_in_its_path_only() {
        assert_eq!(group_of("/groups/trio/mcp").as_deref(), Some("trio"));
        assert_eq!(
            group_of("/groups/my%20group/mcp").as_deref(),
            Some("my group")
        );
        assert_eq!(group_of("/groups//mcp"), None);
        assert_eq!(group_of("/groups/a/b/mcp"), None);
        assert_eq!(group_of("/groups/trio/mcp/"), None);
        assert_eq!(group_of("/mcp"), None);
        assert_eq!(group_of("/groups/%FF/mcp"), None);
    }
}
