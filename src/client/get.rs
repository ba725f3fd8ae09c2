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

/// Facts asked for per GetRecipient page (the hub reduces it to its `max_recipient_facts`).
const PAGE_SIZE: i32 = 1_000;

/// Read the person: every page of its facts (GetRecipient with a page size, following next_page_token).
pub async fn get(args: &GetArgs) -> anyhow::Result<pb::Recipient> {
    let mut c = args.connect.connect().await?;
    let mut page_token = String::new();
    let mut all: Option<pb::Recipient> = None;
    loop {
        let r = c
            .exchange
            .get_recipient(pb::GetRecipientRequest {
                id_number: args.id_number.trim().to_owned(),
                as_of: args.as_of.clone().unwrap_or_default(),
                purpose: args.purpose.clone(),
                page_size: PAGE_SIZE,
                page_token,
            })
            .await
            .map_err(|s| anyhow::anyhow!("GetRecipient: {}", super::status_text(&s)))?
            .into_inner();
        page_token = r.next_page_token.clone();
        match &mut all {
            None => all = Some(r),
            Some(a) => a.facts.extend(r.facts),
        }
        if page_token.is_empty() {
            let mut all = all.expect("one page at least");
            all.next_page_token.clear();
            return Ok(all);
        }
    }
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
