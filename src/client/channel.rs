//! Agency-side client helpers: connect to a hub over mutual TLS with an agency certificate.

use std::path::Path;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::grpc::pb::audit_client::AuditClient;
use crate::grpc::pb::coordination_client::CoordinationClient;
use crate::grpc::pb::medical_assistance_client::MedicalAssistanceClient;
use crate::grpc::pb::recipient_exchange_client::RecipientExchangeClient;
use crate::grpc::pb::reference_client::ReferenceClient;
use crate::grpc::pb::subsidies_client::SubsidiesClient;

/// PEM material of one agency's client identity plus the hub's CA.
#[derive(Clone)]
pub struct ClientIdentity {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl ClientIdentity {
    /// Read `<dir>/ca.pem`, `<dir>/<name>.pem` and `<dir>/<name>.key`.
    pub fn from_dir(dir: &Path, name: &str) -> anyhow::Result<ClientIdentity> {
        let read =
            |f: String| std::fs::read(dir.join(&f)).with_context(|| format!("reading {}", dir.join(&f).display()));
        Ok(ClientIdentity {
            ca_pem: read("ca.pem".into())?,
            cert_pem: read(format!("{name}.pem"))?,
            key_pem: read(format!("{name}.key"))?,
        })
    }
}

/// Open a channel to `server` (e.g. `https://localhost:50051`), verifying the hub's certificate
/// for `domain` (normally `localhost` for the example PKI).
pub async fn connect(server: &str, domain: &str, id: &ClientIdentity) -> anyhow::Result<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&id.ca_pem))
        .identity(Identity::from_pem(&id.cert_pem, &id.key_pem))
        .domain_name(domain);
    let channel = Endpoint::from_shared(server.to_owned())?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("connecting to {server}"))?;
    Ok(channel)
}

/// The doudi clients on one channel.
#[derive(Clone)]
pub struct Clients {
    /// The connection itself (for other services on it, e.g. `grpc.health.v1.Health`).
    pub channel: Channel,
    pub exchange: RecipientExchangeClient<Channel>,
    pub reference: ReferenceClient<Channel>,
    pub audit: AuditClient<Channel>,
    pub coordination: CoordinationClient<Channel>,
    pub medical: MedicalAssistanceClient<Channel>,
    pub subsidies: SubsidiesClient<Channel>,
}

impl Clients {
    pub fn new(channel: Channel, max_message_bytes: usize) -> Clients {
        Clients {
            channel: channel.clone(),
            exchange: RecipientExchangeClient::new(channel.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            reference: ReferenceClient::new(channel.clone()),
            audit: AuditClient::new(channel.clone()),
            coordination: CoordinationClient::new(channel.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            medical: MedicalAssistanceClient::new(channel.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            subsidies: SubsidiesClient::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        }
    }
}
