//! `doudi demo`: the main job for a newcomer (docs/spec/product.md, "The main job").
//!
//! Starts the hub on a fresh SQLite file with freshly made certificates, runs one real gRPC client
//! per agency over mutual TLS, each streaming its own facts of a synthetic Qingyang population,
//! then prints what the hub computed: facts per agency by outcome, persons by county × program
//! (from `ListRecipients.total_size`), and one person as each agency may see them.
//! Then the coordination workflows of 2023: monthly fund reports of every county (some late, one
//! missing, one mismatched) and ~200 early warnings with outcomes (some overdue), printed as the
//! fund-report status table and the warning figures.
//! Then the price subsidies of Sep–Oct 2022 (`demo::subsidies`, docs/subsidies.md): indices, the decision of each
//! month, the county table against the counties' PRICE_SUBSIDY reports, one entitlement explained; and the one-time
//! living subsidy of July 2022 as a fixed-amount campaign with demo amounts (`demo::one_time`), reconciled against the
//! counties' ONE_TIME_SUBSIDY reports. Before 2023Q2 is frozen, development_reform pushes the indices of March–May
//! 2023 (demo data), so the summary's section 12 shows the quarter's subsidy months decided (none triggered).
//! Nothing printed is hard-coded: every number comes back from the hub through gRPC.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{ClientIdentity, Clients, connect};
use crate::config::Config;
use crate::domain::division::QINGYANG_COUNTIES;
use crate::domain::fact::Program;
use crate::grpc::convert::{fact_out, program_out};
use crate::grpc::pb;
use crate::security::certs;
use crate::security::crypto::Keys;
use crate::server::Application;
use crate::tools::synth::{Population, SynthConfig};

pub mod medical;
pub mod one_time;
pub mod quarter_loop;
pub mod snapshot;
pub mod subsidies;

/// Facts per StreamFacts message.
const BATCH: usize = 2_000;
/// The business date the demo reads at (end of 2023Q2).
const AS_OF: &str = "2023-06-30";

/// Flags of `doudi demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Dibao and tekun persons to generate (the letter: 211,300 in July 2022); other low-income
    /// groups are added in proportion.
    #[arg(long, default_value_t = 211_300)]
    pub persons: usize,
    /// Seed of the synthetic population.
    #[arg(long, default_value_t = 2023)]
    pub seed: u64,
    /// Working directory (database, certificates); default: a new temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Then run the quarterly coordination loop (docs/findings.md): the agencies answer some of 2023Q2's findings
    /// and push fixes, civil_affairs freezes 2023Q3, and section 11 of its summary is printed, with one finding's
    /// explanation and the findings pages written beside the summary (about 12 s more at the default size).
    #[arg(long = "loop")]
    pub coordination_loop: bool,
}

const AGENCIES: [&str; 5] =
    ["civil_affairs", "human_resources", "education", "medical_insurance", "disability_federation"];

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (dir, _tmp) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("doudi-demo-").tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let certs_dir = dir.join("certs");
    let db = dir.join("doudi.db");
    if db.exists() {
        anyhow::bail!("{} exists: the demo needs a fresh database (give another --dir)", db.display());
    }
    certs::init(&certs_dir, certs::DEFAULT_TRUST_DOMAIN, true).context("making certificates")?;
    println!("doudi demo — working directory {}", dir.display());

    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", db.display()),
        certs_dir: certs_dir.clone(),
        data_key: Some(Keys::generate_base64().into()),
        max_message_bytes: 16 * 1024 * 1024,
        ..Config::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(&config, async {
        let _ = stop_rx.await;
    })
    .await?;
    let server = format!("https://localhost:{}", app.addr().port());
    let clock = app.hub.clock().clone();
    let hub_task = tokio::spawn(app.run());
    println!("hub listening on {server} (mutual TLS, SQLite {})", db.display());

    let t = Instant::now();
    let pop = Arc::new(Population::generate(&SynthConfig {
        persons: args.persons,
        seed: args.seed,
        ..SynthConfig::default()
    }));
    let expected = pop.expected();
    println!(
        "generated {} persons ({} dibao and tekun) in {:.1}s",
        pop.persons().len(),
        args.persons,
        t.elapsed().as_secs_f64()
    );

    // One client per agency, all streaming at once.
    let multi = MultiProgress::new();
    if args.quiet {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>22} {bar:30} {pos:>9}/{len:9} {per_sec:>12} eta {eta}")?;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for agency in AGENCIES {
        let total = *expected.facts_per_agency.get(agency).unwrap_or(&0) as u64;
        let bar = multi.add(ProgressBar::new(total).with_style(style.clone()).with_prefix(agency));
        let id = ClientIdentity::from_dir(&certs_dir, agency)?;
        let server = server.clone();
        let pop = pop.clone();
        tasks.push(tokio::spawn(async move {
            let channel = connect(&server, "localhost", &id).await?;
            let mut clients = Clients::new(channel, 16 * 1024 * 1024);
            let (tx, rx) = tokio::sync::mpsc::channel::<pb::PushFactsRequest>(4);
            let producer = tokio::task::spawn_blocking(move || {
                let mut batch = Vec::with_capacity(BATCH);
                for f in pop.facts(agency) {
                    batch.push(fact_out(&f));
                    if batch.len() == BATCH {
                        let n = batch.len() as u64;
                        if tx.blocking_send(pb::PushFactsRequest { facts: std::mem::take(&mut batch) }).is_err() {
                            return;
                        }
                        bar.inc(n);
                    }
                }
                if !batch.is_empty() {
                    let n = batch.len() as u64;
                    let _ = tx.blocking_send(pb::PushFactsRequest { facts: batch });
                    bar.inc(n);
                }
                bar.finish();
            });
            let resp = clients.exchange.stream_facts(ReceiverStream::new(rx)).await?.into_inner();
            producer.await?;
            anyhow::Ok((agency, resp))
        }));
    }
    let mut responses = BTreeMap::new();
    for task in tasks {
        let (agency, resp) = task.await??;
        responses.insert(agency, resp);
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    let total_facts: u64 = responses
        .values()
        .filter_map(|r| r.counts)
        .map(|c| c.accepted + c.new_version + c.duplicate + c.stale + c.rejected)
        .sum();
    println!(
        "\nfive agencies streamed {total_facts} facts in {ingest_secs:.1}s ({:.0} facts/s over mTLS)\n",
        total_facts as f64 / ingest_secs
    );

    // Push the first civil-affairs batch again: every fact must come back DUPLICATE.
    let civil = ClientIdentity::from_dir(&certs_dir, "civil_affairs")?;
    let mut civil = Clients::new(connect(&server, "localhost", &civil).await?, 16 * 1024 * 1024);
    let again: Vec<pb::Fact> = pop.facts("civil_affairs").take(1_000).map(|f| fact_out(&f)).collect();
    let again = civil.exchange.push_facts(pb::PushFactsRequest { facts: again }).await?.into_inner();

    println!("Facts per agency by outcome (StreamFacts responses)");
    println!(
        "{:<24}{:>10}{:>12}{:>11}{:>8}{:>10}",
        "agency", "accepted", "new_version", "duplicate", "stale", "rejected"
    );
    for (agency, r) in &responses {
        let c = r.counts.unwrap_or_default();
        println!(
            "{agency:<24}{:>10}{:>12}{:>11}{:>8}{:>10}",
            c.accepted, c.new_version, c.duplicate, c.stale, c.rejected
        );
    }
    let c = again.counts.unwrap_or_default();
    println!(
        "{:<24}{:>10}{:>12}{:>11}{:>8}{:>10}",
        "civil_affairs (re-push)", c.accepted, c.new_version, c.duplicate, c.stale, c.rejected
    );

    // Persons by county × program, from the hub's counts.
    let programs = [
        Program::Dibao,
        Program::Tekun,
        Program::DibaoMarginal,
        Program::AtRisk,
        Program::ExpenditureHardship,
        Program::Orphan,
        Program::UnsupportedChild,
        Program::IllnessImpoverished,
    ];
    println!("\nPersons with ACTIVE assistance on {AS_OF}, by county × program (ListRecipients.total_size)");
    print!("{}", pad("county", 16));
    for p in programs {
        print!("{:>12}", short_program(p));
    }
    println!("{:>12}", "dibao+tekun");
    let mut column_totals = vec![0i64; programs.len()];
    let mut mismatches = 0;
    for (code, name) in QINGYANG_COUNTIES {
        print!("{}", pad(&format!("{code} {name}"), 16));
        let mut dt = 0;
        for (i, p) in programs.iter().enumerate() {
            let n = count(&mut civil, code, *p).await?;
            column_totals[i] += n;
            if matches!(p, Program::Dibao | Program::Tekun) {
                dt += n;
            }
            let want = expected.persons_by_county_program.get(&(code.to_string(), *p)).copied().unwrap_or(0) as i64;
            if want != n {
                mismatches += 1;
            }
            print!("{n:>12}");
        }
        println!("{dt:>12}");
    }
    print!("{}", pad("621000 庆阳市", 16));
    for n in &column_totals {
        print!("{n:>12}");
    }
    println!("{:>12}", column_totals[0] + column_totals[1]);
    println!(
        "(HIV-affected children are never shown below city level; city total: {})",
        count(&mut civil, "621000", Program::HivAffectedChild).await?
    );
    println!(
        "check: hub counts {} the generator's own tally ({} cells differ); dibao+tekun = {} (asked for {})",
        if mismatches == 0 { "match" } else { "DIFFER FROM" },
        mismatches,
        column_totals[0] + column_totals[1],
        args.persons
    );

    // One person, as each agency sees them.
    let showcase = pop.showcase();
    let id = showcase.id_number.clone();
    println!("\nOne person ({}), as each agency may see them (GetRecipient as of {AS_OF})", id.masked());
    for agency in AGENCIES.iter().chain(std::iter::once(&"leading_group")) {
        let cid = ClientIdentity::from_dir(&certs_dir, agency)?;
        let mut c = Clients::new(connect(&server, "localhost", &cid).await?, 4 * 1024 * 1024);
        let r = c
            .exchange
            .get_recipient(pb::GetRecipientRequest {
                id_number: id.as_str().to_owned(),
                as_of: AS_OF.into(),
                purpose: "demo: what each agency may see".into(),
                ..Default::default()
            })
            .await;
        match r {
            Ok(r) => {
                let r = r.into_inner();
                let parts: Vec<String> = r.facts.iter().map(describe_fact).collect();
                println!("  {agency:<22} {}", parts.join("; "));
            }
            Err(s) => println!("  {agency:<22} {:?}: {}", s.code(), s.message()),
        }
    }

    coordination_demo(&mut civil, &clock).await?;

    // The letter's Sep–Oct 2022 price subsidies, decided by the hub (issue 18; docs/subsidies.md).
    let dr = ClientIdentity::from_dir(&certs_dir, "development_reform")?;
    let mut dr = Clients::new(connect(&server, "localhost", &dr).await?, 4 * 1024 * 1024);
    let lg_id = ClientIdentity::from_dir(&certs_dir, "leading_group")?;
    let mut lg_sub = Clients::new(connect(&server, "localhost", &lg_id).await?, 64 * 1024 * 1024);
    let figures = subsidies::run(&mut dr, &mut civil, &mut lg_sub, &clock).await?;
    print!("{}", figures.printed);
    // The one-time living subsidy of July 2022, a fixed-amount campaign (demo amounts: demo::one_time), added by the
    // system administrator through the Admin service.
    let sys = ClientIdentity::from_dir(&certs_dir, &certs::operator_file_base("system-admin"))?;
    let mut admin = crate::grpc::pb::admin_client::AdminClient::new(connect(&server, "localhost", &sys).await?);
    let one = one_time::run(&pop, &mut admin, &mut civil, &mut lg_sub).await?;
    print!("{}", one.printed);

    // The year's settlements reach the hub after the year (the clock says January of the next year), so findings
    // and HIGH_BURDEN warnings are dated then.
    clock.set(Some(demo_instant("2024-01-10T02:00:00Z")?));
    let mi = ClientIdentity::from_dir(&certs_dir, "medical_insurance")?;
    let mut mi = Clients::new(connect(&server, "localhost", &mi).await?, 64 * 1024 * 1024);
    medical::run(&pop, &crate::tools::synth::settlements::SettlementConfig::default(), &mut mi, &mut civil).await?;

    // Freeze 2023Q2 and read the summary back as the leading group. Report files go to --dir, or to ./doudi-demo
    // (the temporary working directory, database included, is removed at the end).
    let lg = ClientIdentity::from_dir(&certs_dir, "leading_group")?;
    let mut lg = Clients::new(connect(&server, "localhost", &lg).await?, 64 * 1024 * 1024);
    let report_dir = match &args.dir {
        Some(d) => d.clone(),
        None => PathBuf::from("doudi-demo"),
    };
    std::fs::create_dir_all(&report_dir)?;
    // The indices behind 2023Q2's subsidy months (demo data), so the frozen quarter decides them (section 12).
    print!("{}", subsidies::push_quarter_indices(&mut dr).await?);
    snapshot::run(&pop, &mut civil, &mut lg, &report_dir).await?;
    if args.coordination_loop {
        let identity = quarter_loop::Connector::certs_dir(&certs_dir);
        let connector = quarter_loop::Connector { server: &server, identity: &identity };
        quarter_loop::run(&connector, &mut civil, &mut lg, &report_dir).await?;
    }

    let _ = stop_tx.send(());
    hub_task.await??;
    println!("\ndemo finished in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn count(c: &mut Clients, division: &str, program: Program) -> anyhow::Result<i64> {
    let r = c
        .exchange
        .list_recipients(pb::ListRecipientsRequest {
            division_code: division.into(),
            program: program_out(Some(program)),
            as_of: AS_OF.into(),
            page_size: 1,
            page_token: String::new(),
            purpose: "demo: persons by county and program".into(),
        })
        .await?
        .into_inner();
    Ok(r.total_size)
}

/// Left-align `s` in `width` terminal columns (CJK characters take two).
fn pad(s: &str, width: usize) -> String {
    let cols: usize = s.chars().map(|c| if c as u32 >= 0x2E80 { 2 } else { 1 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(cols)))
}

fn short_program(p: Program) -> &'static str {
    match p {
        Program::Dibao => "dibao",
        Program::Tekun => "tekun",
        Program::DibaoMarginal => "marginal",
        Program::AtRisk => "at-risk",
        Program::ExpenditureHardship => "hardship",
        Program::Orphan => "orphan",
        Program::UnsupportedChild => "unsupported",
        Program::HivAffectedChild => "hiv-child",
        Program::IllnessImpoverished => "ill-impov.",
    }
}

/// A one-line description of a fact as received (fields present, and how many were left out).
fn describe_fact(f: &pb::Fact) -> String {
    use pb::fact::Payload as P;
    let body = match &f.payload {
        Some(P::Assistance(a)) => {
            let mut s = format!(
                "assistance {} {}",
                pb::Program::try_from(a.program).map(|p| p.as_str_name()).unwrap_or("?").trim_start_matches("PROGRAM_"),
                pb::AssistanceStatus::try_from(a.status)
                    .map(|p| p.as_str_name())
                    .unwrap_or("?")
                    .trim_start_matches("ASSISTANCE_STATUS_")
            );
            if !a.monthly_benefit.is_empty() {
                s.push_str(&format!(" {}元/月", a.monthly_benefit));
            }
            if let Some(c) = a.rural_class {
                s.push_str(&format!(" class {c}"));
            }
            s
        }
        Some(P::Student(s)) => format!(
            "student {}",
            pb::Stage::try_from(s.stage).map(|p| p.as_str_name()).unwrap_or("?").trim_start_matches("STAGE_")
        ),
        Some(P::EducationAid(e)) => format!("education_aid {}", e.annual_amount),
        Some(P::Employment(e)) => format!(
            "employment {}",
            pb::EmploymentStatus::try_from(e.status)
                .map(|p| p.as_str_name())
                .unwrap_or("?")
                .trim_start_matches("EMPLOYMENT_STATUS_")
        ),
        Some(P::Pension(p)) => format!("pension enrolled={}", p.enrolled),
        Some(P::MedicalInsurance(m)) => format!(
            "medical_insurance {} {}",
            m.year,
            pb::PremiumSubsidy::try_from(m.premium_subsidy)
                .map(|p| p.as_str_name())
                .unwrap_or("?")
                .trim_start_matches("PREMIUM_SUBSIDY_")
        ),
        Some(P::Disability(d)) => {
            let cat = pb::DisabilityCategory::try_from(d.category).map(|p| p.as_str_name()).unwrap_or("?");
            if d.category == 0 {
                format!("disability grade {}", d.grade)
            } else {
                format!("disability {} grade {}", cat.trim_start_matches("DISABILITY_CATEGORY_"), d.grade)
            }
        }
        Some(P::DisabilitySubsidy(s)) => {
            let mut parts = vec!["disability_subsidy".to_owned()];
            if !s.living_subsidy.is_empty() {
                parts.push(format!("living {}元/月", s.living_subsidy));
            }
            if !s.nursing_subsidy.is_empty() {
                parts.push(format!("nursing {}元/月", s.nursing_subsidy));
            }
            parts.join(" ")
        }
        None => "?".into(),
    };
    match f.omitted_fields.len() {
        0 => body,
        1 => format!("{body} [1 field withheld]"),
        n => format!("{body} [{n} fields withheld]"),
    }
}

/// The roster programs the demo's counties report every month.
const REPORTED: [pb::FundProgram; 3] =
    [pb::FundProgram::UrbanDibao, pb::FundProgram::RuralDibao, pb::FundProgram::Tekun];
/// The one report never submitted, and the one submitted with a wrong amount (county, month, program).
const DEMO_MISSING: (&str, u32, pb::FundProgram) = ("621027", 11, pb::FundProgram::RuralDibao);
const DEMO_MISMATCH: (&str, u32, pb::FundProgram) = ("621023", 5, pb::FundProgram::UrbanDibao);

fn demo_instant(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(chrono::DateTime::parse_from_rfc3339(s)?.to_utc())
}

/// 2023's fund reports and early warnings, replayed with the hub's clock set to each submission instant
/// (the city civil-affairs office submits on behalf of the county offices: only 621022 has its own certificate).
async fn coordination_demo(civil: &mut Clients, clock: &crate::hub::Clock) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut submitted = 0;
    for m in 1..=12u32 {
        let month = format!("2023-{m:02}");
        for program in REPORTED {
            // The county payroll: what the roster says each county pays this month (read back from the hub).
            let rows = civil
                .coordination
                .list_fund_reports(pb::ListFundReportsRequest {
                    month: month.clone(),
                    program: program as i32,
                    as_of: month_end(&month),
                    include_history: false,
                })
                .await?
                .into_inner()
                .rows;
            for (i, row) in rows.iter().enumerate() {
                let county = row.county_code.as_str();
                if (county, m, program) == DEMO_MISSING {
                    continue;
                }
                let payroll: crate::domain::money::Money = row.expected_amount.parse()?;
                let amount = if (county, m, program) == DEMO_MISMATCH {
                    payroll + crate::domain::money::Money::from_fen(50_000)?
                } else {
                    payroll
                };
                // Most counties report on the 10th; a few, in a fixed pattern, on the 20th (late).
                let late = (i as u32 + m * 3 + program as u32).is_multiple_of(11);
                let day = if late { 20 } else { 10 };
                clock.set(Some(demo_instant(&format!("{month}-{day:02}T02:00:00Z"))?));
                civil
                    .coordination
                    .submit_fund_report(pb::SubmitFundReportRequest {
                        county_code: county.to_owned(),
                        month: month.clone(),
                        program: program as i32,
                        disbursed_on: format!("{month}-05"),
                        amount: amount.to_string(),
                        recipients: 0,
                    })
                    .await?;
                submitted += 1;
            }
        }
    }
    println!("\ncounty offices submitted {submitted} fund reports for 2023 in {:.1}s", t.elapsed().as_secs_f64());

    // Status table, county × month, read back: the worst of the three programs in each cell.
    println!("Fund reports 2023 (ListFundReports; worst of URBAN_DIBAO / RURAL_DIBAO / TEKUN per cell)");
    print!("{}", pad("county", 16));
    for m in 1..=12 {
        print!("{:>9}", format!("2023-{m:02}"));
    }
    println!();
    let mut cells: BTreeMap<(String, u32), u8> = BTreeMap::new();
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for m in 1..=12u32 {
        let month = format!("2023-{m:02}");
        for program in REPORTED {
            let rows = civil
                .coordination
                .list_fund_reports(pb::ListFundReportsRequest {
                    month: month.clone(),
                    program: program as i32,
                    as_of: "2024-01-31".into(),
                    include_history: false,
                })
                .await?
                .into_inner()
                .rows;
            for row in rows {
                let rank = match pb::ReportStatus::try_from(row.status) {
                    _ if !row.finding.is_empty() => 3,
                    Ok(pb::ReportStatus::Missing) => 4,
                    Ok(pb::ReportStatus::Late) => 2,
                    Ok(pb::ReportStatus::OnTime) => 1,
                    _ => 0,
                };
                let name = ["PENDING", "ON_TIME", "LATE", "MISMATCH", "MISSING"][rank as usize];
                *totals.entry(name).or_default() += 1;
                let cell = cells.entry((row.county_code.clone(), m)).or_default();
                *cell = (*cell).max(rank);
            }
        }
    }
    for (code, name) in QINGYANG_COUNTIES {
        print!("{}", pad(&format!("{code} {name}"), 16));
        for m in 1..=12 {
            let rank = cells.get(&(code.to_owned(), m)).copied().unwrap_or(0);
            print!("{:>9}", ["PENDING", "ON_TIME", "LATE", "MISMATCH", "MISSING"][rank as usize]);
        }
        println!();
    }
    let totals: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("reports by status (county × month × program): {}", totals.join(", "));

    // ~200 warnings from the province across 2023, with outcomes.
    let t = Instant::now();
    clock.set(None);
    let reasons = [
        pb::WarningReason::IncomeDrop,
        pb::WarningReason::ExpenditureSpike,
        pb::WarningReason::Illness,
        pb::WarningReason::Disability,
        pb::WarningReason::Accident,
        pb::WarningReason::SchoolingCost,
        pb::WarningReason::Other,
    ];
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 4).context("date")?;
    let mut warnings = Vec::new();
    let mut plans = Vec::new();
    for i in 0..200u32 {
        let (county, _) = QINGYANG_COUNTIES[(i % 8) as usize];
        let received = start + chrono::Days::new(u64::from((i * 37) % 340));
        let birth = chrono::NaiveDate::from_ymd_opt(1950 + (i % 50) as i32, 1 + i % 12, 1 + i % 28).context("date")?;
        let id = crate::domain::id_number::IdNumber::from_parts(county, birth, 500 + i as u16);
        let warning_id = format!("GS-2023-{i:05}");
        let at = demo_instant(&format!("{received}T02:00:00Z"))?;
        warnings.push(pb::WarningIn {
            warning_id: warning_id.clone(),
            id_number: id.as_str().to_owned(),
            division_code: county.to_owned(),
            reason: reasons[(i % 7) as usize] as i32,
            received_at: Some(crate::grpc::convert::timestamp(at)),
        });
        plans.push((warning_id, received, i));
    }
    civil.coordination.push_warnings(pb::PushWarningsRequest { warnings }).await?;
    for (warning_id, received, i) in plans {
        // i % 10 == 9: never visited (overdue); visits 1–6 days after receipt; every 4th decision waits a week.
        if i % 10 == 9 {
            continue;
        }
        let visited = received + chrono::Days::new(u64::from(1 + i % 6));
        civil
            .coordination
            .record_warning_outcome(pb::RecordWarningOutcomeRequest {
                warning_id: warning_id.clone(),
                step: Some(pb::record_warning_outcome_request::Step::Visit(pb::WarningVisit {
                    visited_on: visited.to_string(),
                })),
            })
            .await?;
        if i % 10 == 8 {
            continue; // visited, no decision yet
        }
        let decided = visited + chrono::Days::new(if i % 4 == 0 { 7 } else { 1 });
        let (decision, program) = match i % 3 {
            0 => (pb::WarningDecision::Assisted, pb::FundProgram::TemporaryAssistance),
            1 => (pb::WarningDecision::NotEligible, pb::FundProgram::Unspecified),
            _ => (pb::WarningDecision::Referred, pb::FundProgram::Unspecified),
        };
        civil
            .coordination
            .record_warning_outcome(pb::RecordWarningOutcomeRequest {
                warning_id: warning_id.clone(),
                step: Some(pb::record_warning_outcome_request::Step::Decision(pb::WarningDecisionStep {
                    decided_on: decided.to_string(),
                    decision: decision as i32,
                    program: program as i32,
                })),
            })
            .await?;
        if i % 2 == 0 {
            civil
                .coordination
                .record_warning_outcome(pb::RecordWarningOutcomeRequest {
                    warning_id,
                    step: Some(pb::record_warning_outcome_request::Step::Close(pb::WarningClose {
                        closed_on: (decided + chrono::Days::new(3)).to_string(),
                    })),
                })
                .await?;
        }
    }
    let as_of = "2023-12-31";
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let r = civil
            .coordination
            .list_warnings(pb::ListWarningsRequest {
                as_of: as_of.into(),
                page_size: 1000,
                page_token: token.clone(),
                purpose: "demo: warning workflow figures".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        all.extend(r.warnings);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let n = |f: &dyn Fn(&pb::Warning) -> bool| all.iter().filter(|w| f(w)).count();
    println!(
        "\nEarly warnings 2023 (ListWarnings as of {as_of}; pushed and worked in {:.1}s)",
        t.elapsed().as_secs_f64()
    );
    println!("{:<34}{:>8}", "received", all.len());
    println!("{:<34}{:>8}", "visited within 3 working days", n(&|w| w.visited_on_time));
    println!("{:<34}{:>8}", "decided within 5 working days", n(&|w| w.decided_on_time));
    println!("{:<34}{:>8}", "overdue (open, a step late)", n(&|w| w.overdue));
    println!(
        "{:<34}{:>8}",
        "  most working days late",
        all.iter().map(|w| w.visit_days_late.max(w.decision_days_late)).max().unwrap_or(0)
    );
    println!("{:<34}{:>8}", "assisted", n(&|w| w.decision == pb::WarningDecision::Assisted as i32));
    println!("{:<34}{:>8}", "closed", n(&|w| w.state == pb::WarningState::Closed as i32));
    let provisional = n(&|w| w.decision_due_provisional || w.days_late_provisional);
    if provisional > 0 {
        println!("{:<34}{:>8}", "provisional deadlines (notice of", provisional);
        println!("  a year not loaded: doudi calendar add)");
    }
    Ok(())
}

/// The last day of a YYYY-MM month, YYYY-MM-DD.
fn month_end(month: &str) -> String {
    month.parse::<crate::domain::calendar::Month>().map(|m| m.last_day().to_string()).unwrap_or_default()
}
