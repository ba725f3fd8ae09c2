//! gRPC: the only module that sees protobuf types. Handlers are glue: authenticate, convert with
//! `convert`, call the `Hub`, convert back; errors become statuses in `status`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod convert;
pub mod coordination;
pub mod exchange;
pub mod gateway;
pub mod health;
pub mod limits;
pub mod matching;
pub mod medical;
pub mod observe;
pub mod reference;
pub mod snapshot;
pub mod status;
pub mod subsidies;
pub mod trace_context;
pub mod watch;

/// Generated protobuf and tonic code of `proto/doudi/v1/`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("doudi.v1");
}

/// Encoded descriptor set of `proto/doudi/v1/` with its imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/doudi_descriptor.bin"));
