//! `doudi findings explain ID`: how the hub got to a finding (ExplainFinding, docs/findings.md "Explanations"),
//! printed in Chinese and English: the inputs with their content hashes, the policy parameters, each step with its
//! amount, the test, and whether the recomputation agrees with the stored finding. `doudi findings page QUARTER`:
//! the findings pages (`findings_page.rs`).

use super::ConnectArgs;
use crate::grpc::pb;

#[derive(clap::Args, Debug, Clone)]
pub struct FindingsArgs {
    #[command(subcommand)]
    pub command: FindingsCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum FindingsCommand {
    /// Print a finding's explanation (a medical finding's `finding_id`, e.g.
    /// `medical/medical_insurance/B-621022/ASSISTANCE_MISSED`, or a coverage finding's).
    Explain(ExplainArgs),
    /// Write a quarter's findings as HTML pages (findings-QUARTER.html, …): one row per finding you may read, each
    /// linked to its explanation; filtered by agency, division, code, kind, answer (docs/findings.md).
    Page(super::findings_page::PageArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The finding's id (`Finding.finding_id`).
    pub finding_id: String,
    /// Why you read it (written to the hub's audit log).
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Ask the hub for the explanation (ExplainFinding).
pub async fn explain(a: &ExplainArgs) -> anyhow::Result<pb::ExplainFindingResponse> {
    let mut c = a.connect.connect().await?;
    Ok(c.medical
        .explain_finding(pb::ExplainFindingRequest { finding_id: a.finding_id.clone(), purpose: a.purpose.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("ExplainFinding: {}", super::status_text(&s)))?
        .into_inner())
}

/// Run `doudi findings …`.
pub async fn run(args: FindingsArgs) -> anyhow::Result<()> {
    match args.command {
        FindingsCommand::Page(a) => super::findings_page::run(a).await,
        FindingsCommand::Explain(a) => {
            let e = explain(&a).await?;
            if a.json {
                let json = serde_json::json!({
                    "finding_id": e.finding_id,
                    "code": e.code,
                    "agency_to_act": e.agency_to_act,
                    "inputs": e.inputs.iter().map(line_json).collect::<Vec<_>>(),
                    "parameters": e.parameters.iter().map(line_json).collect::<Vec<_>>(),
                    "steps": e.steps.iter().map(line_json).collect::<Vec<_>>(),
                    "test": e.test.as_ref().map(line_json),
                    "recomputed_expected": e.recomputed_expected,
                    "recomputed_actual": e.recomputed_actual,
                    "stored_expected": e.stored_expected,
                    "stored_actual": e.stored_actual,
                    "raised": e.raised,
                    "matches_stored": e.matches_stored,
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                print!("{}", render(&e));
            }
            Ok(())
        }
    }
}

fn line_json(l: &pb::ExplanationLine) -> serde_json::Value {
    serde_json::json!({ "name": l.name, "en": l.en, "zh": l.zh, "value": l.value })
}

/// The explanation as text (`report::explanation::text`): each line in Chinese, then English, with its value.
pub fn render(e: &pb::ExplainFindingResponse) -> String {
    crate::report::explanation::text(&crate::grpc::medical::explanation_in(e))
}
