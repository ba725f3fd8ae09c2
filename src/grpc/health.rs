//! `grpc.health.v1.Health`: tonic-health's service, with `Watch` on an unknown service as the health protocol
//! (https://github.com/grpc/grpc/blob/master/doc/health-checking.md) says.
//!
//! tonic-health 0.14.9 answers `Watch` for a service it does not know with the error NOT_FOUND and ends the call. The
//! protocol says: "If the requested service is unknown when the call is received, the server will send a message
//! setting the serving status to SERVICE_UNKNOWN but will *not* terminate the call." So `Check` and `Watch` of a known
//! service go to tonic-health unchanged; `Watch` of an unknown one sends SERVICE_UNKNOWN and then stays open (the
//! hub's services are fixed at start, so nothing follows; the call ends when the client cancels it or the connection
//! closes, as for any watch).

use std::pin::Pin;

use futures::{Stream, StreamExt as _};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus};
use tonic_health::server::{HealthReporter, HealthService};

/// The stream `Watch` answers with.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

/// tonic-health's [`HealthService`], `Watch` of an unknown service corrected (module documentation).
#[derive(Debug)]
pub struct HubHealth {
    inner: HealthService,
}

impl HubHealth {
    /// The service reporting what `reporter` sets.
    pub fn new(reporter: HealthReporter) -> HubHealth {
        HubHealth { inner: HealthService::from_health_reporter(reporter) }
    }
}

#[tonic::async_trait]
impl Health for HubHealth {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        match self.inner.watch(request).await {
            Ok(known) => Ok(Response::new(Box::pin(known.into_inner()) as WatchStream)),
            Err(e) if e.code() == Code::NotFound => {
                let unknown = HealthCheckResponse { status: ServingStatus::ServiceUnknown as i32 };
                let stream = futures::stream::once(async move { Ok(unknown) }).chain(futures::stream::pending());
                Ok(Response::new(Box::pin(stream) as WatchStream))
            }
            Err(e) => Err(e),
        }
    }
}
