//! `doudi list`: persons with facts in force, as the agency may see them (ListRecipients, paged).

use super::{ConnectArgs, view};
use crate::grpc::pb;

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// GB/T 2260 prefix: county (6 digits), township (9) or village (12).
    #[arg(long)]
    pub division: Option<String>,
    /// Only persons with an ACTIVE enrolment in this program: dibao, tekun, dibao_marginal, at_risk,
    /// expenditure_hardship, orphan, unsupported_child, hiv_affected_child, illness_impoverished.
    #[arg(long)]
    pub program: Option<String>,
    /// Business date, YYYY-MM-DD [default: today in Asia/Shanghai].
    #[arg(long)]
    pub as_of: Option<String>,
    /// Persons per page, 1–1,000.
    #[arg(long, default_value_t = 100)]
    pub page_size: i32,
    /// Start at this page (the token printed after the previous page).
    #[arg(long, default_value = "")]
    pub page_token: String,
    /// Read every page.
    #[arg(long)]
    pub all: bool,
    /// Why you list these persons (written to the hub's audit log).
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The persons read, the filter's total and the token of the next page (empty at the end).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub recipients: Vec<pb::Recipient>,
    pub total_size: i64,
    pub omitted_count: i64,
    pub next_page_token: String,
}

/// Read one page, or every page with `--all`.
pub async fn list(args: &ListArgs) -> anyhow::Result<Listing> {
    let program = match args.program.as_deref() {
        None | Some("") => 0,
        Some(p) => super::format::program_in(p, "program").map_err(|e| anyhow::anyhow!("--program: {}", e.reason))?,
    };
    let mut c = args.connect.connect().await?;
    let mut out = Listing::default();
    let mut token = args.page_token.clone();
    loop {
        let r = c
            .exchange
            .list_recipients(pb::ListRecipientsRequest {
                division_code: args.division.clone().unwrap_or_default(),
                program,
                as_of: args.as_of.clone().unwrap_or_default(),
                page_size: args.page_size,
                page_token: token,
                purpose: args.purpose.clone(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("ListRecipients: {}", super::status_text(&s)))?
            .into_inner();
        out.recipients.extend(r.recipients);
        out.total_size = r.total_size;
        out.omitted_count += r.omitted_count;
        out.next_page_token = r.next_page_token.clone();
        token = r.next_page_token;
        if !args.all || token.is_empty() {
            return Ok(out);
        }
    }
}

/// What `doudi list` prints.
pub fn render(l: &Listing, json: bool) -> anyhow::Result<String> {
    if json {
        let v = serde_json::json!({
            "total_size": l.total_size,
            "omitted_count": l.omitted_count,
            "next_page_token": l.next_page_token,
            "recipients": l.recipients.iter().map(view::recipient_to_json).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut s = view::recipients_table(&l.recipients);
    s += &format!("\n{} persons shown of {} matching", l.recipients.len(), l.total_size);
    if l.omitted_count > 0 {
        s += &format!(" ({} of whom you may read nothing)", l.omitted_count);
    }
    s += "\n";
    if !l.next_page_token.is_empty() {
        s += &format!("next page: --page-token {}  (or --all)\n", l.next_page_token);
    }
    Ok(s)
}

/// `doudi list`.
pub async fn run(args: ListArgs) -> anyhow::Result<()> {
    let l = list(&args).await?;
    print!("{}", render(&l, args.json)?);
    Ok(())
}
