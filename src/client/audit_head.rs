//! `doudi audit head`: fetch the hub's signed audit head (Audit.GetSignedHead), check its signature with the CA, and
//! keep it as a JSON file (`--save FILE`) for `doudi audit verify --against FILE` (docs/audit-lanes.md "Signed heads",
//! docs/operations.md).

use std::path::PathBuf;

use anyhow::Context as _;

use super::ConnectArgs;
use crate::grpc::pb;
use crate::security::audit_head::SignedHead;

#[derive(clap::Args, Debug, Clone)]
pub struct HeadArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Write the signed head to this file (JSON), after checking its signature with the CA.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Ask the hub to sign its current heads now instead of returning the newest head it signed.
    #[arg(long)]
    pub fresh: bool,
}

/// Fetch the signed head and check it with the CA the connection trusts (`--ca` or CERTS_DIR/ca.pem): signer
/// certificate issued by it and naming the audit signer, signature valid.
pub async fn fetch(args: &HeadArgs) -> anyhow::Result<SignedHead> {
    let ca_pem = args.connect.identity()?.ca_pem;
    let mut c = args.connect.connect().await?;
    let r = c
        .audit
        .get_signed_head(pb::GetSignedHeadRequest { fresh: args.fresh })
        .await
        .map_err(|s| anyhow::anyhow!("GetSignedHead: {}", super::status_text(&s)))?
        .into_inner();
    let head = crate::grpc::audit::signed_head_from_pb(&r).map_err(|e| anyhow::anyhow!("GetSignedHead: {e}"))?;
    crate::security::audit_head::verify(&head, &ca_pem, None)
        .map_err(|e| anyhow::anyhow!("the hub's signed head is refused: {e}"))?;
    Ok(head)
}

/// One line about a signed head: when, and each lane's head.
pub fn describe(h: &SignedHead) -> String {
    let heads = if h.heads.is_empty() { "no events".to_owned() } else { crate::domain::audit::format_heads(&h.heads) };
    format!(
        "audit heads signed at {}: {heads}",
        crate::store::from_micros(h.signed_at_micros).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

/// `doudi audit head`.
pub async fn run(args: HeadArgs) -> anyhow::Result<()> {
    let head = fetch(&args).await?;
    println!("{}", describe(&head));
    println!("signature verified with the CA");
    if let Some(path) = &args.save {
        // Written beside and renamed, so an interrupted save never leaves half a file under the name.
        let tmp = path.with_extension("json.part");
        std::fs::write(&tmp, head.to_json()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        println!("saved to {}", path.display());
    }
    Ok(())
}
