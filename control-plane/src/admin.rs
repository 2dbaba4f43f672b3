//! The operator API (`AdminService`): apply, status and version.

use std::sync::Arc;

use hangar_config::ConfigErrors;
use hangar_proto::v1::admin_service_server::AdminService;
use hangar_proto::v1::{
    ApplyRequest, ApplyResponse, CreateApiKeyRequest, CreateApiKeyResponse, DeleteApiKeyRequest,
    DeleteApiKeyResponse, ListApiKeysRequest, ListApiKeysResponse, StatusRequest, StatusResponse,
    ValidationError, ValidationErrors, VersionRequest, VersionResponse,
};
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};

use crate::api_keys::{ApiKeys, KeyError};
use crate::metrics::{ApplyResult, Metrics};
use crate::state::{ApplyError, ConfigState};
use hangar_runtime::error_chain;

use crate::status;
use crate::traces::{ApplySpan, Tracer};
use opentelemetry::context::FutureExt as _;

/// Implements `hangar.v1.AdminService`.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    state: Arc<ConfigState>,
    /// What `status` rolls up: the config, this fleet and other replicas'.
    status: status::Source,
    metrics: Arc<Metrics>,
    /// The API keys of MCP clients.
    api_keys: Arc<ApiKeys>,
    /// Ends status watches, so that a graceful shutdown does not wait for them.
    shutdown: CancellationToken,
    /// Where the spans of applies go.
    tracer: Tracer,
}

impl Admin {
    /// An admin service over the given config state that rolls `status`
    /// up and counts applies in `metrics`; its watches end when
    /// `shutdown` is cancelled.
    pub(crate) fn new(
        state: Arc<ConfigState>,
        status: status::Source,
        metrics: Arc<Metrics>,
        api_keys: Arc<ApiKeys>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            state,
            status,
            metrics,
            api_keys,
            shutdown,
            tracer: None,
        }
    }

    /// Traces applies to `tracer`.
    pub(crate) fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn apply(
        &self,
        request: Request<ApplyRequest>,
    ) -> Result<Response<ApplyResponse>, Status> {
        let req = request.into_inner();
        let source_name = if req.source_name.is_empty() {
            "config.yaml"
        } else {
            &req.source_name
        };
        let span = ApplySpan::start(&self.tracer, source_name);
        let apply = self.state.apply(source_name, &req.yaml, req.allow_empty);
        let result = match &span {
            Some(span) => apply.with_context(span.context()).await,
            None => apply.await,
        };
        let outcome = match &result {
            Ok(applied) if applied.changed => ApplyResult::Applied,
            Ok(_) => ApplyResult::Unchanged,
            Err(ApplyError::Invalid(_)) => ApplyResult::Invalid,
            Err(ApplyError::WouldRemoveEveryServer { .. }) => ApplyResult::Refused,
            Err(ApplyError::Store(_) | ApplyError::Interrupted(_)) => ApplyResult::Failed,
            Err(ApplyError::Conflict { .. }) => ApplyResult::Conflict,
        };
        self.metrics.applied(outcome);
        if let Some(span) = span {
            let errors = match &result {
                Err(ApplyError::Invalid(errors)) => errors.0.len(),
                Err(_) => 1,
                Ok(_) => 0,
            };
            let version = result.as_ref().ok().map(|applied| applied.version);
            span.end(outcome.as_str(), version, errors);
        }
        match result {
            Ok(applied) => Ok(Response::new(ApplyResponse {
                version: applied.version,
                changed: applied.changed,
            })),
            Err(ApplyError::Invalid(errors)) => Err(invalid_config(&errors)),
            // FAILED_PRECONDITION: the config is valid; the fleet's state
            // is what makes it refused.
            Err(err @ ApplyError::WouldRemoveEveryServer { .. }) => {
                Err(Status::failed_precondition(err.to_string()))
            }
            // ABORTED: the client should re-read and retry, unlike UNAVAILABLE.
            Err(err @ ApplyError::Conflict { .. }) => Err(Status::aborted(err.to_string())),
            Err(err @ ApplyError::Store(_)) => {
                let message = error_chain(&err);
                tracing::error!(error = %message, "cannot store config");
                Err(Status::unavailable(message))
            }
            Err(err @ ApplyError::Interrupted(_)) => {
                let message = error_chain(&err);
                tracing::error!(error = %message, "cannot load config");
                Err(Status::internal(message))
            }
        }
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.rollup().await))
    }

    async fn version(
        &self,
        _request: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(build_version()))
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let request = request.into_inner();
        let expires =
            (request.expires_in_ms > 0).then(|| Duration::from_millis(request.expires_in_ms));
        let (info, key) = self
            .api_keys
            .create(&request.principal, expires)
            .await
            .map_err(key_status)?;
        Ok(Response::new(CreateApiKeyResponse {
            info: Some(info),
            key,
        }))
    }

    async fn list_api_keys(
        &self,
        _request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        Ok(Response::new(ListApiKeysResponse {
            keys: self.api_keys.list(),
        }))
    }

    async fn delete_api_key(
        &self,
        request: Request<DeleteApiKeyRequest>,
    ) -> Result<Response<DeleteApiKeyResponse>, Status> {
        self.api_keys
            .delete(&request.into_inner().id)
            .await
            .map_err(key_status)?;
        Ok(Response::new(DeleteApiKeyResponse {}))
    }

    type WatchStatusStream = ReceiverStream<Result<StatusResponse, Status>>;

    async fn watch_status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<Self::WatchStatusStream>, Status> {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let admin = self.clone();
        tokio::spawn(async move { admin.follow_status(tx).await });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Statuses waiting for a slow watcher; the newest matters, so keep few.
const WATCH_BUFFER: usize = 2;
/// A watcher gets a fresh status at least this often (ages move on).
const WATCH_REFRESH: Duration = Duration::from_secs(5);

// === impl Admin ===

impl Admin {
    async fn rollup(&self) -> StatusResponse {
        self.status.gather().await.rollup()
    }

    /// Sends the status, then again on every change of config or fleet,
    /// until the watcher goes away or the server shuts down.
    async fn follow_status(self, tx: mpsc::Sender<Result<StatusResponse, Status>>) {
        let mut changes = self.status.changes(WATCH_REFRESH);
        loop {
            if tx.send(Ok(self.rollup().await)).await.is_err() {
                return;
            }
            tokio::select! {
                more = changes.next() => if !more { return },
                () = tx.closed() => return,
                () = self.shutdown.cancelled() => return,
            }
        }
    }
}

/// This binary's version, target and build profile.
pub(crate) fn build_version() -> VersionResponse {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    VersionResponse {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        profile: profile.to_owned(),
    }
}

/// `INVALID_ARGUMENT` carrying every error as `ValidationErrors` details, so
/// `hangarctl apply` prints them exactly as `hangarctl validate` does.
fn invalid_config(errors: &ConfigErrors) -> Status {
    let details = ValidationErrors {
        errors: errors
            .0
            .iter()
            .map(|e| ValidationError {
                source_name: e.source_name.clone(),
                line: e.line,
                column: e.column,
                path: e.path.clone(),
                message: e.message.clone(),
            })
            .collect(),
    };
    let message = format!("invalid config ({} errors)", errors.0.len());
    Status::with_details(
        Code::InvalidArgument,
        message,
        details.encode_to_vec().into(),
    )
}

/// The gRPC status of a key operation that failed.
fn key_status(err: KeyError) -> Status {
    match &err {
        KeyError::BadPrincipal(_) | KeyError::ReservedPrincipal => {
            Status::invalid_argument(err.to_string())
        }
        KeyError::Unknown(_) => Status::not_found(err.to_string()),
        KeyError::Busy => Status::aborted(err.to_string()),
        KeyError::Store(store) => {
            tracing::error!(error = %error_chain(store), "cannot store the API keys");
            Status::unavailable(format!("cannot store the API keys: {}", error_chain(store)))
        }
    }
}
