//! `doudi subsidies …` as an agency (issue 18; docs/subsidies.md): `decide MONTH`, `list MONTH`, `summary FROM TO`
//! and `push-indices FILE.csv` over `doudi.v1.Subsidies`, as tables or `--json`. Adding a rule version is an operator
//! command (`doudi subsidies rule add`, in [`crate::ops::subsidies`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::ConnectArgs;
use crate::grpc::pb;

/// `doudi subsidies decide MONTH`.
#[derive(clap::Args, Debug, Clone)]
pub struct DecideArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Subsidy month, YYYY-MM (its index month is the month before).
    pub month: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `doudi subsidies list MONTH`.
#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Subsidy month, YYYY-MM (the price-subsidy linkage); or give --campaign.
    pub month: Option<String>,
    /// A fixed-amount campaign's code instead of a month.
    #[arg(long)]
    pub campaign: Option<String>,
    /// GB/T 2260 prefix: county (6 digits), township (9) or village (12).
    #[arg(long)]
    pub division: Option<String>,
    /// Roster persons per page, 1–1,000.
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
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

/// `doudi subsidies summary FROM TO`.
#[derive(clap::Args, Debug, Clone)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// First subsidy month, YYYY-MM.
    pub from: String,
    /// Last subsidy month, YYYY-MM (at most 12 months).
    pub to: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `doudi subsidies campaign-summary CODE`.
#[derive(clap::Args, Debug, Clone)]
pub struct CampaignSummaryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The fixed-amount campaign's code.
    pub campaign: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `doudi subsidies push-indices FILE.csv` (development_reform).
#[derive(clap::Args, Debug, Clone)]
pub struct PushIndicesArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// CSV with a header: month,cpi_yoy,food_cpi_yoy,scpi_yoy,published_on (scpi_yoy may be empty).
    pub file: PathBuf,
}

fn status(method: &str, s: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{method}: {}", super::status_text(s))
}

fn residence(r: i32) -> &'static str {
    match pb::Residence::try_from(r) {
        Ok(pb::Residence::Urban) => "URBAN",
        Ok(pb::Residence::Rural) => "RURAL",
        _ => "",
    }
}

/// A decision as a table: comparisons, then the amounts.
pub fn decision_table(d: &pb::LinkageDecision) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "subsidy month {}  index month {} (version {}, published {})  rule {}",
        d.month, d.index_month, d.index_version, d.index_published_on, d.rule_version
    );
    let _ = writeln!(s, "  source: {}", d.rule_source);
    for c in &d.comparisons {
        let _ = writeln!(
            s,
            "  {:<9} {:>6} %  threshold {:>5} %  {}",
            c.index,
            c.rise,
            c.threshold,
            if c.crossed { "CROSSED" } else { "below" }
        );
    }
    if !d.triggered {
        let _ = writeln!(s, "  not triggered: nobody is owed a price subsidy for {}", d.month);
        return s;
    }
    let _ = writeln!(
        s,
        "  triggered by {}; {}",
        d.applied_index,
        if d.pay_once_at_highest { "paid once, at the highest amount" } else { "paid once per group" }
    );
    let _ = writeln!(s, "  {:<24} {:<6} {:>10} {:>10}", "group", "res.", "base", "amount");
    for a in &d.amounts {
        let _ = writeln!(s, "  {:<24} {:<6} {:>10} {:>10}", a.group, residence(a.residence), a.base, a.amount);
    }
    s
}

/// Entitlements as a table: one line per payment, with the facts considered.
pub fn entitlements_table(rows: &[pb::SubsidyEntitlement]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<18} {:<6} {:<24} {:<6} {:>8}  facts", "id_number", "county", "group", "res.", "amount");
    for e in rows {
        for p in &e.payments {
            let considered: Vec<String> =
                e.considered.iter().map(|c| format!("{} {} ({})", c.basis, c.amount, c.fact)).collect();
            let _ = writeln!(
                s,
                "{:<18} {:<6} {:<24} {:<6} {:>8}  {}",
                e.id_number,
                e.county_code,
                p.group,
                residence(p.residence),
                p.amount,
                considered.join("; ")
            );
        }
    }
    s
}

/// County rows of a summary as a table.
pub fn summary_table(r: &pb::SummarizeLinkageResponse) -> String {
    let mut s = String::new();
    for m in &r.months {
        let _ = writeln!(
            s,
            "{}: {} ({})",
            m.month,
            if m.triggered { "triggered" } else { "not triggered" },
            m.rule_version
        );
    }
    let _ = writeln!(
        s,
        "{:<7} {:>8} {:>12} {:>14} {:>14}  finding",
        "county", "persons", "person-times", "owed", "reported"
    );
    for c in &r.counties {
        let _ = writeln!(
            s,
            "{:<7} {:>8} {:>12} {:>14} {:>14}  {}",
            c.county_code, c.persons, c.person_times, c.amount_owed, c.amount_reported, c.finding
        );
    }
    let _ = writeln!(s, "tolerance {} yuan per county and month", r.tolerance);
    s
}

fn to_json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)?)
}

#[derive(serde::Serialize)]
struct DecisionJson<'a> {
    month: &'a str,
    index_month: &'a str,
    index_version: u32,
    rule_version: &'a str,
    rule_source: &'a str,
    triggered: bool,
    applied_index: &'a str,
    comparisons: Vec<serde_json::Value>,
    amounts: Vec<serde_json::Value>,
    pay_once_at_highest: bool,
}

fn decision_json(d: &pb::LinkageDecision) -> DecisionJson<'_> {
    DecisionJson {
        month: &d.month,
        index_month: &d.index_month,
        index_version: d.index_version,
        rule_version: &d.rule_version,
        rule_source: &d.rule_source,
        triggered: d.triggered,
        applied_index: &d.applied_index,
        comparisons: d
            .comparisons
            .iter()
            .map(|c| serde_json::json!({"index": c.index, "rise": c.rise, "threshold": c.threshold, "crossed": c.crossed}))
            .collect(),
        amounts: d
            .amounts
            .iter()
            .map(|a| serde_json::json!({"group": a.group, "residence": residence(a.residence), "base": a.base, "amount": a.amount}))
            .collect(),
        pay_once_at_highest: d.pay_once_at_highest,
    }
}

/// `doudi subsidies decide MONTH`: the decision, as a table or JSON.
pub async fn decide(args: &DecideArgs) -> anyhow::Result<String> {
    let mut c = args.connect.connect().await?;
    let r = c
        .subsidies
        .decide_linkage(pb::DecideLinkageRequest { month: args.month.clone() })
        .await
        .map_err(|s| status("DecideLinkage", &s))?
        .into_inner();
    let d = r.decision.unwrap_or_default();
    if args.json { to_json(&decision_json(&d)) } else { Ok(decision_table(&d)) }
}

/// `doudi subsidies list MONTH`: one page, or every page with `--all`.
pub async fn list(args: &ListArgs) -> anyhow::Result<String> {
    let mut c = args.connect.connect().await?;
    let mut token = String::new();
    let mut rows = Vec::new();
    let mut decision = None;
    loop {
        let r = c
            .subsidies
            .list_entitlements(pb::ListEntitlementsRequest {
                month: args.month.clone().unwrap_or_default(),
                campaign: args.campaign.clone().unwrap_or_default(),
                division_code: args.division.clone().unwrap_or_default(),
                page_size: args.page_size,
                page_token: token,
                purpose: args.purpose.clone(),
            })
            .await
            .map_err(|s| status("ListEntitlements", &s))?
            .into_inner();
        rows.extend(r.entitlements);
        decision = decision.or(r.decision);
        token = r.next_page_token;
        if !args.all || token.is_empty() {
            break;
        }
    }
    let d = decision.unwrap_or_default();
    if args.json {
        let entitlements: Vec<serde_json::Value> = rows
            .iter()
            .map(|e| {
                let pay = |p: &pb::SubsidyPayment| {
                    serde_json::json!({"group": p.group, "residence": residence(p.residence), "amount": p.amount,
                        "basis": p.basis, "fact": p.fact})
                };
                serde_json::json!({
                    "id_number": e.id_number, "county_code": e.county_code, "total": e.total,
                    "payments": e.payments.iter().map(pay).collect::<Vec<_>>(),
                    "considered": e.considered.iter().map(pay).collect::<Vec<_>>(),
                })
            })
            .collect();
        to_json(&serde_json::json!({
            "decision": serde_json::to_value(decision_json(&d))?,
            "entitlements": entitlements,
            "next_page_token": token,
        }))
    } else {
        let mut s = decision_table(&d);
        s.push_str(&entitlements_table(&rows));
        if !token.is_empty() {
            let _ = writeln!(s, "more: --all reads every page");
        }
        Ok(s)
    }
}

/// `doudi subsidies summary FROM TO`.
pub async fn summary(args: &SummaryArgs) -> anyhow::Result<String> {
    let mut c = args.connect.connect().await?;
    let r = c
        .subsidies
        .summarize_linkage(pb::SummarizeLinkageRequest { from_month: args.from.clone(), to_month: args.to.clone() })
        .await
        .map_err(|s| status("SummarizeLinkage", &s))?
        .into_inner();
    if args.json {
        let counties: Vec<serde_json::Value> = r
            .counties
            .iter()
            .map(|c| {
                serde_json::json!({"county_code": c.county_code, "persons": c.persons, "person_times": c.person_times,
                    "amount_owed": c.amount_owed, "amount_reported": c.amount_reported, "finding": c.finding})
            })
            .collect();
        let months: Vec<serde_json::Value> =
            r.months.iter().map(|m| serde_json::to_value(decision_json(m))).collect::<Result<_, _>>()?;
        to_json(&serde_json::json!({"months": months, "counties": counties, "tolerance": r.tolerance}))
    } else {
        Ok(summary_table(&r))
    }
}

/// `doudi subsidies campaign-summary CODE`: the campaign's amounts and its county figures.
pub async fn campaign_summary(args: &CampaignSummaryArgs) -> anyhow::Result<String> {
    let mut c = args.connect.connect().await?;
    let r = c
        .subsidies
        .summarize_campaign(pb::SummarizeCampaignRequest { campaign: args.campaign.clone() })
        .await
        .map_err(|s| status("SummarizeCampaign", &s))?
        .into_inner();
    let as_linkage = pb::SummarizeLinkageResponse {
        months: r.campaign.clone().into_iter().collect(),
        counties: r.counties,
        tolerance: r.tolerance,
    };
    if args.json {
        let counties: Vec<serde_json::Value> = as_linkage
            .counties
            .iter()
            .map(|c| {
                serde_json::json!({"county_code": c.county_code, "persons": c.persons, "person_times": c.person_times,
                    "amount_owed": c.amount_owed, "amount_reported": c.amount_reported, "finding": c.finding})
            })
            .collect();
        let campaign = r.campaign.as_ref().map(decision_json).map(serde_json::to_value).transpose()?;
        to_json(&serde_json::json!({"campaign": campaign, "counties": counties, "tolerance": as_linkage.tolerance}))
    } else {
        let mut s = r.campaign.as_ref().map(decision_table).unwrap_or_default();
        s.push_str(&summary_table(&as_linkage));
        Ok(s)
    }
}

/// `doudi subsidies push-indices FILE.csv`: one PushPriceIndices of every row.
pub async fn push_indices(args: &PushIndicesArgs) -> anyhow::Result<String> {
    let mut rdr = csv::Reader::from_path(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut indices = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        let get = |name: &str| col(name).and_then(|i| rec.get(i)).unwrap_or("").trim().to_owned();
        indices.push(pb::PriceIndex {
            month: get("month"),
            cpi_yoy: get("cpi_yoy"),
            food_cpi_yoy: get("food_cpi_yoy"),
            scpi_yoy: get("scpi_yoy"),
            published_on: get("published_on"),
        });
    }
    let months: Vec<String> = indices.iter().map(|i| i.month.clone()).collect();
    let mut c = args.connect.connect().await?;
    let r = c
        .subsidies
        .push_price_indices(pb::PushPriceIndicesRequest { indices })
        .await
        .map_err(|s| status("PushPriceIndices", &s))?
        .into_inner();
    let mut s = String::new();
    for (m, o) in months.iter().zip(r.outcomes) {
        let name = pb::IndexOutcome::try_from(o).map(|o| o.as_str_name()).unwrap_or("?");
        let _ = writeln!(s, "{m}  {}", name.trim_start_matches("INDEX_OUTCOME_"));
    }
    Ok(s)
}
