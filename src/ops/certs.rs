//! `doudi certs …`: the PKI of the hub and the agencies ([`crate::security::certs`]): make it, issue further
//! certificates with its CA, revoke and refresh the CRL (offline on the directory, or through the hub with
//! --operator; docs/admin.md).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use crate::client::admin::Mode;

/// `doudi certs …`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Make a CA, a server certificate (localhost, 127.0.0.1, ::1), one client certificate per agency,
    /// the 环县 (621022) county civil-affairs office, the operators (operator-system-admin, operator-security-admin,
    /// operator-security-admin-2, operator-audit-admin: docs/admin.md), a revoked certificate and the CRL listing it.
    Init {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// SPIFFE trust domain written into the agency certificates.
        #[arg(long, default_value = crate::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing CA.
        #[arg(long)]
        force: bool,
    },
    /// Issue the hub's audit signer (audit-signing.pem, audit-signing.key: the key that signs audit heads) with the
    /// CA in --dir, for a PKI made before `doudi certs init` wrote it. The hub loads it at start.
    AuditSigner {
        /// Directory holding ca.pem and ca.key (the hub's certs_dir).
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// SPIFFE trust domain of the signer's ID (spiffe://<domain>/hub/audit-signer): the hub's trust_domain.
        #[arg(long, default_value = crate::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing audit signing key.
        #[arg(long)]
        force: bool,
    },
    /// Revoke an agency's certificate: add its serial to `revoked-serials.txt` and rewrite the CRL (`ca.crl`)
    /// signed by the CA in the same directory. A running hub picks it up on SIGHUP or within `crl_poll_secs`; the
    /// agency's next connection is refused.
    ///
    /// With --operator (a security administrator), the certificate file is sent to the hub, which revokes it with the
    /// CA key in its own certs_dir, reloads the CRL at once and records the audit event (docs/admin.md); without, this
    /// is the CA's own offline tool on --dir (no audit event: the files are not the hub's database).
    Revoke {
        /// The certificate's file name without `.pem`, e.g. `education` or `civil_affairs-621022`.
        name: String,
        /// Directory holding ca.pem, ca.key and the certificate.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Rewrite the CRL (`ca.crl`) from `revoked-serials.txt`, signed by the CA in the same directory, with a fresh
    /// nextUpdate (365 days ahead): what to do when the hub says its CRL is stale. A running hub picks it up on
    /// SIGHUP or within `crl_poll_secs`.
    ///
    /// With --operator (a security administrator): the hub rewrites its own CRL, reloads it and audits it.
    RefreshCrl {
        /// Directory holding ca.pem, ca.key and revoked-serials.txt.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Issue one agency's client certificate with the CA in --dir: `AGENCY.pem` and `.key` (`AGENCY-COUNTY` for a
    /// county office), URI SAN spiffe://<trust-domain>/agency/<code>[/division/<county>]. For an agency that joined
    /// after `doudi certs init` made the directory (docs/operations.md §5); the access matrix must know it. Nothing
    /// else in --dir is rewritten.
    IssueAgency {
        /// The agency code, e.g. `development_reform` (lowercase letters, digits and '_').
        agency: String,
        /// A county office of the agency: its six-digit county code (GB/T 2260), e.g. 621022.
        #[arg(long)]
        county: Option<String>,
        /// Directory holding ca.pem and ca.key.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// SPIFFE trust domain (the hub's trust_domain).
        #[arg(long, default_value = crate::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
    },
    /// Issue an operator certificate (docs/admin.md) with the CA in --dir: `operator-NAME.pem` and `.key`, URI SAN
    /// spiffe://<trust-domain>/operator/<role>/<name>. E.g. a further security administrator for the two-person rule.
    IssueOperator {
        /// system (configuration, calendar, policy versions, retention), security (access matrix, certificates,
        /// data-key rotation) or audit (reads and verifies the audit; changes nothing).
        #[arg(long)]
        role: String,
        /// The operator's name: 1-40 characters of a-z, 0-9, '_' and '-' (unique across roles).
        #[arg(long)]
        name: String,
        /// Directory holding ca.pem and ca.key.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// SPIFFE trust domain (the hub's trust_domain).
        #[arg(long, default_value = crate::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
    },
}

/// Run one certificate command.
pub async fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { out, trust_domain, force } => {
            crate::security::certs::init(&out, &trust_domain, force)
                .with_context(|| format!("writing certificates to {}", out.display()))?;
            println!("certificates written to {}", out.display());
            Ok(())
        }
        CertsCommand::AuditSigner { dir, trust_domain, force } => {
            let cert = crate::security::certs::add_audit_signer(&dir, &trust_domain, force)
                .with_context(|| format!("issuing the audit signer in {}", dir.display()))?;
            println!(
                "audit signer written: {} ({}); restart the hub to sign with it",
                cert.display(),
                crate::security::audit_head::signer_spiffe_id(&trust_domain)
            );
            Ok(())
        }
        CertsCommand::IssueAgency { agency, county, dir, trust_domain } => {
            let cert = crate::security::certs::add_agency(&dir, &trust_domain, &agency, county.as_deref())
                .with_context(|| format!("issuing {agency}'s certificate in {}", dir.display()))?;
            println!(
                "agency certificate written: {} ({}); hand it, its .key and ca.pem to the agency",
                cert.display(),
                crate::security::certs::spiffe_id(&trust_domain, &agency, county.as_deref())?
            );
            Ok(())
        }
        CertsCommand::IssueOperator { role, name, dir, trust_domain } => {
            let r = crate::domain::admin::Role::parse(&role)
                .with_context(|| format!("--role {role:?}: one of system, security, audit"))?;
            let cert = crate::security::certs::add_operator(&dir, &trust_domain, r, &name)
                .with_context(|| format!("issuing operator {name} in {}", dir.display()))?;
            println!(
                "operator certificate written: {} (spiffe://{trust_domain}/operator/{role}/{name}); use it with \
                 --operator {name} --certs-dir {}",
                cert.display(),
                dir.display()
            );
            Ok(())
        }
        CertsCommand::Revoke { name, dir, hub } => {
            let file = if name.ends_with(".pem") { name.clone() } else { format!("{name}.pem") };
            if let Mode::Hub(hub) = hub.mode("doudi certs revoke", false)? {
                return crate::client::operator::certs_revoke(&hub, &dir.join(&file)).await;
            }
            crate::security::certs::revoke(&dir, &file)
                .with_context(|| format!("revoking {}", dir.join(&file).display()))?;
            println!("{} revoked; CRL rewritten: {}", dir.join(&file).display(), dir.join("ca.crl").display());
            Ok(())
        }
        CertsCommand::RefreshCrl { dir, hub } => {
            if let Mode::Hub(hub) = hub.mode("doudi certs refresh-crl", false)? {
                return crate::client::operator::certs_refresh_crl(&hub).await;
            }
            let n = crate::security::certs::rebuild_crl(&dir)
                .with_context(|| format!("rewriting {}", dir.join("ca.crl").display()))?;
            println!(
                "CRL rewritten: {} ({n} revoked serials, next update in {} days)",
                dir.join("ca.crl").display(),
                crate::security::certs::CRL_VALIDITY_DAYS
            );
            Ok(())
        }
    }
}
