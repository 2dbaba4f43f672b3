//! The operator API (`AdminService`): apply and status.

use std::sync::Arc;

use hangar_config::ConfigErrors;
use hangar_proto::v1::admin_service_server::AdminService;
use hangar_proto::v1::{
    ApplyRequest, ApplyResponse, StatusRequest, StatusResponse, ValidationError, ValidationErrors,
};
use prost::Message;
use tonic::{Code, Request, Response, Status};

use crate::fleet::Fleet;
use crate::state::{ApplyError, ConfigState};
use crate::status;

/// Implements `hangar.v1.AdminService`.
#[derive(Debug, Clone)]
pub struct Admin {
    state: Arc<ConfigState>,
    fleet: Arc<Fleet>,
}

impl Admin {
    /// An admin service over the given config state and fleet.
    pub fn new(state: Arc<ConfigState>, fleet: Arc<Fleet>) -> Self {
        Self { state, fleet }
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
        match self.state.apply(source_name, &req.yaml) {
            Ok(applied) => Ok(Response::new(ApplyResponse {
                version: applied.version,
                changed: applied.changed,
            })),
            Err(ApplyError::Invalid(errors)) => Err(invalid_config(&errors)),
            Err(err @ ApplyError::Store(_)) => {
                let message = error_chain(&err);
                tracing::error!(error = %message, "cannot store config");
                Err(Status::unavailable(message))
            }
        }
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let current = self.state.current();
        let planes = self.fleet.planes();
        Ok(Response::new(status::rollup(
            current.version,
            &current.config,
            &planes,
        )))
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

/// `outer: cause: root cause`, for messages that leave the process.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
