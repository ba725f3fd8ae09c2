//! Hub errors → gRPC statuses. One exhaustive mapping, no wildcard arm. Client-facing messages say
//! what the client did wrong and nothing about internals; internal causes go to the log.

use tonic::{Code, Status};

use crate::hub::HubError;

impl From<HubError> for Status {
    fn from(e: HubError) -> Status {
        match e {
            HubError::InvalidArgument { field, reason } => Status::invalid_argument(format!("{field}: {reason}")),
            HubError::PermissionDenied(m) => Status::permission_denied(m),
            HubError::NotFound(m) => Status::not_found(m),
            HubError::FailedPrecondition(m) => Status::failed_precondition(m),
            HubError::ResourceExhausted(m) => Status::resource_exhausted(m),
            HubError::AlreadyExists(m) => Status::already_exists(m),
            HubError::OutOfRange(m) => Status::out_of_range(m),
            HubError::Store(e) if e.is_transient() => {
                tracing::warn!(error = %e, "database unavailable");
                Status::unavailable("database unavailable; the request was not applied: retry")
            }
            HubError::Store(e) => {
                tracing::error!(error = %e, "store error");
                Status::new(Code::Internal, "internal storage error; the request was not applied")
            }
            HubError::Keys(e) => {
                tracing::error!(error = %e, "key error");
                Status::new(Code::Internal, "internal key error")
            }
        }
    }
}

/// INVALID_ARGUMENT naming the field.
pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}
