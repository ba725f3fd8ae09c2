//! `doudi get ID_NUMBER`: one person as the agency may see them (GetRecipient).

use super::{ConnectArgs, view};
use crate::grpc::pb;

#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// 18-character resident ID number.
    pub id_number: String,
    /// Business date, YYYY-MM-DD [default: today in Asia/Shanghai].
    #[arg(long)]
    pub as_of: Option<String>,
    /// Why you read this person (written to the hub's audit log).
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Read the person.
pub async fn get(args: &GetArgs) -> anyhow::Result<pb::Recipient> {
    let mut c = args.connect.connect().await?;
    let r = c
        .exchange
        .get_recipient(pb::GetRecipientRequest {
            id_number: args.id_number.trim().to_owned(),
            as_of: args.as_of.clone().unwrap_or_default(),
            purpose: args.purpose.clone(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetRecipient: {}", super::status_text(&s)))?;
    Ok(r.into_inner())
}

/// What `doudi get` prints.
pub fn render(r: &pb::Recipient, json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(&view::recipient_to_json(r))? + "\n");
    }
    Ok(format!(
        "{} as of {}: {} fact{}\n{}\n",
        r.id_number,
        r.as_of,
        r.facts.len(),
        if r.facts.len() == 1 { "" } else { "s" },
        view::recipient_table(r)
    ))
}

/// `doudi get`.
pub async fn run(args: GetArgs) -> anyhow::Result<()> {
    let r = get(&args).await?;
    print!("{}", render(&r, args.json)?);
    Ok(())
}
