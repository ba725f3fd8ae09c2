//! Operator commands through the hub (docs/admin.md): the connection of an operator certificate
//! (`--operator NAME` reads `operator-NAME.pem`/`.key` from `--certs-dir`, [`crate::security::certs::operator_file_base`]), the
//! choice between the hub and the database (`--direct-database`, break-glass: docs/operations.md), and the `doudi
//! admin …` commands of the two-person rule and the audit administrator.

use std::path::PathBuf;

use anyhow::Context as _;
use tonic::transport::Channel;

use super::{ConnectArgs, MAX_MESSAGE_BYTES, status_text};
use crate::grpc::pb::{self, admin_client::AdminClient};

/// How an operator command reaches the hub: as an operator over mutual TLS, or (break-glass) on the database. Global,
/// so that `doudi admin approve 3 --operator bob` reads as well as `doudi admin --operator bob approve 3`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OperatorArgs {
    /// As this operator, through the hub's Admin service: reads CERTS_DIR/operator-NAME.pem and .key (made by `doudi
    /// certs init` or `doudi certs issue-operator`).
    #[arg(long, global = true, conflicts_with = "direct_database")]
    pub operator: Option<String>,
    /// The hub's address [default: https://localhost:50051].
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// Directory holding ca.pem and the operator's certificate and key.
    #[arg(long, global = true)]
    pub certs_dir: Option<PathBuf>,
    /// Name the hub's certificate must carry [default: localhost].
    #[arg(long, global = true)]
    pub domain: Option<String>,
    /// Break-glass: work on the database directly instead of through the hub (first start, disaster recovery;
    /// docs/operations.md "Break glass"). The action is still an audit event, by `direct-database:$USER`.
    #[arg(long, global = true)]
    pub direct_database: bool,
}

/// Where an operator command goes.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Through the hub's Admin service.
    Hub(OperatorArgs),
    /// On the database directly.
    Direct,
}

impl OperatorArgs {
    /// `--operator NAME --certs-dir DIR --server URL`.
    pub fn hub(server: &str, certs_dir: &std::path::Path, operator: &str) -> OperatorArgs {
        OperatorArgs {
            operator: Some(operator.to_owned()),
            server: Some(server.to_owned()),
            certs_dir: Some(certs_dir.to_owned()),
            domain: None,
            direct_database: false,
        }
    }

    /// The mode of `command`: the hub with `--operator`; the database with `--direct-database`, or for a command that
    /// only reads (`writes` false) when neither is given; otherwise an error saying both ways.
    pub fn mode(&self, command: &str, writes: bool) -> anyhow::Result<Mode> {
        if self.operator.is_some() {
            return Ok(Mode::Hub(self.clone()));
        }
        if self.direct_database || !writes {
            return Ok(Mode::Direct);
        }
        anyhow::bail!(
            "`{command}` changes the hub's state: run it through the hub as an operator (--operator NAME --certs-dir \
             DIR [--server URL]; docs/admin.md), or, for first start and disaster recovery only, on the database \
             directly with --direct-database (docs/operations.md \"Break glass\")"
        )
    }

    /// Connect to the hub's Admin service with the operator's certificate.
    pub async fn connect(&self) -> anyhow::Result<AdminClient<Channel>> {
        let name = self.operator.as_deref().context("--operator NAME is required to go through the hub")?;
        let dir = self.certs_dir.as_deref().context("--certs-dir DIR (holding ca.pem and operator-NAME.pem/.key)")?;
        let mut args = ConnectArgs::from_dir(
            self.server.as_deref().unwrap_or("https://localhost:50051"),
            dir,
            &crate::security::certs::operator_file_base(name),
        );
        if let Some(d) = &self.domain {
            args.domain = d.clone();
        }
        let id = args.identity()?;
        let channel = crate::client::connect(&args.server, &args.domain, &id).await?;
        Ok(AdminClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }
}

/// A failed call as an error for the user: the code and the hub's message.
pub fn failed(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", status_text(&s))
}

/// `doudi admin …`: the two-person rule and the audit administrator's reads, through the hub.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
    #[command(flatten)]
    pub hub: OperatorArgs,
}

/// The `doudi admin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// As a security administrator: request a new access matrix (a TOML file of the form of
    /// crates/domain/src/access_policy.toml); a second security administrator approves it (`doudi admin approve ID`), and
    /// each hub uses it from its next start.
    RequestMatrix {
        /// The matrix file.
        file: PathBuf,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// As a security administrator: approve another security administrator's request.
    Approve {
        /// The request's id (`doudi admin changes` lists them).
        id: i64,
        /// The content hash you reviewed (`doudi admin changes` prints it); refused if the request differs.
        #[arg(long)]
        content_hash: Option<String>,
    },
    /// As a security administrator: the pending change requests (with --all, every one), newest first.
    Changes {
        #[arg(long)]
        all: bool,
    },
    /// As the audit administrator: audit events, newest first, refusals and administrative actions included.
    Events {
        /// Only this agency ("operator": administrative actions).
        #[arg(long)]
        agency: Option<String>,
        /// Only this outcome: REFUSED, ANSWERED, PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED, HANDSHAKE.
        #[arg(long)]
        outcome: Option<String>,
        /// At most this many (1 to 1,000).
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// As the audit administrator: recompute the audit chain on the hub.
    VerifyAudit,
}

fn print_change(c: &pb::AdminChange) {
    let kind = pb::ChangeKind::try_from(c.kind).map(|k| k.as_str_name()).unwrap_or("?");
    let state = pb::ChangeState::try_from(c.state).map(|s| s.as_str_name()).unwrap_or("?");
    println!(
        "change {}  {kind}  {state}  requested by {}  reason: {}  content {}{}",
        c.id,
        c.requested_by,
        c.reason,
        c.content_hash,
        if c.approved_by.is_empty() { String::new() } else { format!("  approved by {}", c.approved_by) }
    );
}

/// Run `doudi admin …`.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let mut client = args.hub.connect().await?;
    match args.command {
        AdminCommand::RequestMatrix { file, reason } => {
            let toml = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let r = client
                .request_change(pb::RequestChangeRequest {
                    kind: pb::ChangeKind::AccessMatrix as i32,
                    access_matrix_toml: toml,
                    new_key_check: String::new(),
                    reason,
                })
                .await
                .map_err(|s| failed("RequestChange", s))?
                .into_inner();
            let c = r.change.context("the hub answered no change")?;
            print_change(&c);
            println!("a second security administrator approves it with `doudi admin approve {}`", c.id);
        }
        AdminCommand::Approve { id, content_hash } => {
            let r = client
                .approve_change(pb::ApproveChangeRequest {
                    change_id: id,
                    content_hash: content_hash.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("ApproveChange", s))?
                .into_inner();
            print_change(&r.change.context("the hub answered no change")?);
        }
        AdminCommand::Changes { all } => {
            let r = client
                .list_changes(pb::ListChangesRequest { all })
                .await
                .map_err(|s| failed("ListChanges", s))?
                .into_inner();
            for c in &r.changes {
                print_change(c);
            }
            println!("{} change requests", r.changes.len());
        }
        AdminCommand::Events { agency, outcome, limit } => {
            let r = client
                .list_audit_events(pb::ListAuditEventsRequest {
                    agency: agency.unwrap_or_default(),
                    outcome: outcome.unwrap_or_default(),
                    page_size: limit,
                    ..Default::default()
                })
                .await
                .map_err(|s| failed("ListAuditEvents", s))?
                .into_inner();
            for e in &r.events {
                println!("{}  {}  {}  {}  {}", e.seq, e.agency, e.method, e.purpose, e.outcome);
            }
        }
        AdminCommand::VerifyAudit => {
            let r = client
                .verify_audit_log(pb::VerifyAuditLogRequest {})
                .await
                .map_err(|s| failed("VerifyAuditLog", s))?
                .into_inner()
                .result
                .context("the hub answered no result")?;
            println!("audit events checked: {}", r.events_checked);
            if r.valid {
                println!("valid: every event recomputes and links to the one before in its lane");
            } else {
                println!("BROKEN at event {} of lane {}: {}", r.first_broken_seq, r.first_broken_lane, r.reason);
                return Err(crate::ops::CheckFailed.into());
            }
        }
    }
    Ok(())
}
