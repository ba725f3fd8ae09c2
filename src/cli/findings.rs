//! `doudi findings explain ID`: how the hub got to a finding (ExplainFinding, docs/findings.md "Explanations"),
//! printed in Chinese and English: the inputs with their content hashes, the policy parameters, each step with its
//! amount, the test, and whether the recomputation agrees with the stored finding.

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
    /// `medical/medical_insurance/B-621022/ASSISTANCE_MISSED`).
    Explain(ExplainArgs),
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

/// The explanation as text: each line in Chinese, then English, with its value.
pub fn render(e: &pb::ExplainFindingResponse) -> String {
    let mut out = format!("问题 Finding {}  {}  责任部门 agency to act: {}\n", e.finding_id, e.code, e.agency_to_act);
    let mut block = |title: &str, lines: &[pb::ExplanationLine]| {
        out.push_str(&format!("\n{title}\n"));
        for l in lines {
            out.push_str(&format!("  {} = {}\n    {}\n    {}\n", l.name, l.value, l.zh, l.en));
        }
    };
    block("输入 Inputs (value: content hash 内容哈希)", &e.inputs);
    block("参数 Parameters", &e.parameters);
    block("计算步骤 Steps", &e.steps);
    block("判定 Test", e.test.as_slice());
    let or_dash = |s: &str| if s.is_empty() { "—".to_owned() } else { s.to_owned() };
    out.push_str(&format!(
        "\n重算 Recomputed: expected 应付 {} / actual 实付 {}; 存储 stored: {} / {}\n",
        or_dash(&e.recomputed_expected),
        or_dash(&e.recomputed_actual),
        or_dash(&e.stored_expected),
        or_dash(&e.stored_actual)
    ));
    out.push_str(&format!(
        "与存储一致 Agrees with the stored finding: {}\n",
        if e.matches_stored { "是 yes" } else { "否 no" }
    ));
    out
}
