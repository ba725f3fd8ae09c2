//! The findings pages (issue 19 item 3, docs/findings.md "The findings page") end to end: `doudi findings page
//! 2023Q2` as civil_affairs over a small fixture writes one row per finding, each linked to an anchor on its page
//! whose explanation is the one ExplainFinding returns, with docs/spec/medical.md's worked figures for examples B, C
//! and E; filters; who may read what; and the quarterly page linking to the pages.
//!
//! The fixture (Huan county 621022; example parameters of docs/spec/medical.md, migration 0005):
//! - U, rural dibao, no medical insurance: coverage UNINSURED (agency to act medical_insurance); answered
//!   IN_PROGRESS;
//! - B, DIBAO_MARGINAL (group 3), insured, settlement B (example B, settled 2023-04-10): ASSISTANCE_MISSED
//!   (1,300.00); answered DISPUTED;
//! - C, no program, insured, settlement C (example C, settled 2023-05-10: scope 5,000.00, basic 3,000.00, MA paid
//!   500.00, total 6,000.00): ASSISTANCE_TO_INELIGIBLE (out of pocket 2,500.00, below the 20,000.00 HIGH_BURDEN
//!   threshold);
//! - T, rural dispersed tekun (group 1, tilted) at 605.00 a month (the 2023 standard, not above it), insured with a
//!   PARTIAL premium subsidy: coverage PREMIUM_SUBSIDY_MISMATCH (tekun needs FULL); settlements D (settled
//!   2023-04-05) and E (2023-06-20), examples D and E moved into 2023Q2 (same year, same order): D raises nothing, E
//!   raises CII_TILT_NOT_APPLIED, OVER_ASSISTED and ANNUAL_CAP_EXCEEDED (not referred, so no
//!   TILTED_ASSISTANCE_CANDIDATE).
//!
//! Seven findings in all: two coverage, five medical.

use std::collections::BTreeSet;
use std::path::Path;

use doudi::client::Clients;
use doudi::client::findings_page::{AnswerArg, KindArg, PageArgs};
use doudi::grpc::pb;
use doudi::report::findings_page::anchor;
use macro_rules_attribute::apply;

use crate::support::*;

const HUAN: &str = "621022";

fn settlement(id: &str, person: &str, day: &str, amounts: [&str; 6]) -> pb::Settlement {
    let [total, scope, basic, cii, ma, oop] = amounts;
    pb::Settlement {
        settlement_id: id.into(),
        id_number: person.into(),
        division_code: HUAN.into(),
        admitted_on: day.into(),
        settled_on: day.into(),
        visit_type: pb::VisitType::Inpatient as i32,
        in_province: true,
        referred: false,
        total_cost: total.into(),
        policy_scope_cost: scope.into(),
        basic_paid: basic.into(),
        critical_illness_paid: cii.into(),
        medical_assistance_paid: ma.into(),
        other_paid: "0.00".into(),
        out_of_pocket: oop.into(),
    }
}

fn assistance(program: pb::Program, household: &str) -> pb::fact::Payload {
    let tekun = program == pb::Program::Tekun;
    pb::fact::Payload::Assistance(pb::Assistance {
        program: program as i32,
        household_id: household.into(),
        status: pb::AssistanceStatus::Active as i32,
        residence: if tekun { pb::Residence::Rural as i32 } else { 0 },
        support_mode: if tekun { pb::SupportMode::Dispersed as i32 } else { 0 },
        monthly_benefit: if tekun { "605.00".into() } else { String::new() },
        ..Default::default()
    })
}

/// The fixture pushed, settled and frozen (2023Q2, on 2023-07-05); returns the four persons' ID numbers.
async fn fixture(app: &TestApp) -> [String; 4] {
    let [u, b, c, t] = [701, 702, 703, 704].map(|seq| id(HUAN, (1970, 3, 1), seq));
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    let facts = vec![
        with(base("AS-U", &u, HUAN), rural_dibao()),
        with(base("AS-B", &b, HUAN), assistance(pb::Program::DibaoMarginal, "HH-B")),
        with(base("AS-T", &t, HUAN), assistance(pb::Program::Tekun, "HH-T")),
    ];
    let r = push(&mut civil, facts).await.unwrap();
    assert_eq!(r.counts.unwrap().accepted, 3, "{r:?}");
    let covers = [("MI-B", &b), ("MI-C", &c), ("MI-T", &t)].map(|(f, p)| with(base(f, p, HUAN), medical_insurance()));
    assert_eq!(push(&mut mi, covers.to_vec()).await.unwrap().counts.unwrap().accepted, 3);
    let settlements = vec![
        // Example B: total 12,000.00, scope 10,000.00, basic 6,000.00, nothing else paid, 6,000.00 out of pocket.
        settlement("B-1", &b, "2023-04-10", ["12000.00", "10000.00", "6000.00", "0.00", "0.00", "6000.00"]),
        // Example C: MA paid 500.00 without a program; 6,000 − 3,000 − 500 = 2,500.00 out of pocket.
        settlement("C-1", &c, "2023-05-10", ["6000.00", "5000.00", "3000.00", "0.00", "500.00", "2500.00"]),
        // Example D: 60,000 − 30,000 − 9,750 − 10,250 = 10,000.00 out of pocket.
        settlement("D-1", &t, "2023-04-05", ["60000.00", "50000.00", "30000.00", "9750.00", "10250.00", "10000.00"]),
        // Example E: 45,000 − 22,000 − 6,000 − 12,000 = 5,000.00 out of pocket.
        settlement("E-1", &t, "2023-06-20", ["45000.00", "40000.00", "22000.00", "6000.00", "12000.00", "5000.00"]),
    ];
    mi.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements }).await.unwrap();
    app.app_hub.clock.set(Some("2023-07-05T02:00:00Z".parse().unwrap()));
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    [u, b, c, t]
}

/// The medical findings of the fixture, by hand (docs/spec/medical.md's examples B, C, E).
const MEDICAL: [&str; 5] = [
    "medical/medical_insurance/B-1/ASSISTANCE_MISSED",
    "medical/medical_insurance/C-1/ASSISTANCE_TO_INELIGIBLE",
    "medical/medical_insurance/E-1/CII_TILT_NOT_APPLIED",
    "medical/medical_insurance/E-1/OVER_ASSISTED",
    "medical/medical_insurance/E-1/ANNUAL_CAP_EXCEEDED",
];

/// The coverage finding of `code` for the person `id_number` (its id carries the person key, which only the hub
/// knows).
async fn coverage_id(c: &mut Clients, code: &str, id_number: &str) -> String {
    let r = c
        .coordination
        .list_coverage_findings(pb::ListCoverageFindingsRequest {
            quarter: "2023Q2".into(),
            code: code.into(),
            purpose: "findings page test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    r.findings.into_iter().find(|f| f.id_number == id_number).expect("the finding").finding_id
}

fn page_args(app: &TestApp, certs: &Path, agency: &str, out: &Path) -> PageArgs {
    let who = app.identity(agency, None);
    std::fs::write(certs.join("ca.pem"), &who.ca_pem).unwrap();
    std::fs::write(certs.join(format!("{agency}.pem")), &who.cert_pem).unwrap();
    std::fs::write(certs.join(format!("{agency}.key")), &who.key_pem).unwrap();
    PageArgs {
        connect: doudi::client::ConnectArgs::from_dir(&app.server, certs, agency),
        quarter: "2023Q2".into(),
        output: out.to_owned(),
        agency: None,
        division: None,
        code: None,
        kind: KindArg::All,
        answer: None,
        page_size: 3,
        limit: None,
        purpose: "findings page test".into(),
    }
}

/// Each page written, (file name, HTML), in name order.
fn pages(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("findings-"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// The list's rows: (the `#anchor` each links to, the full finding id in its title).
fn rows(html: &str) -> Vec<(String, String)> {
    let list = &html[html.find("<table id=\"list\">").unwrap()..];
    let list = &list[..list.find("</table>").unwrap()];
    list.split("<a href=\"#")
        .skip(1)
        .map(|s| {
            let anchor = s[..s.find('"').unwrap()].to_owned();
            let title = &s[s.find("title=\"").unwrap() + 7..];
            (anchor, title[..title.find('"').unwrap()].to_owned())
        })
        .collect()
}

/// The explanation article with `id`, or panics.
fn article<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<article class=\"explanation\" id=\"{id}\">")).unwrap_or_else(|| panic!("#{id}"));
    let rest = &html[start..];
    &rest[..rest.find("</article>").unwrap()]
}

/// A step or parameter line as the page renders it (name, value), e.g. ("expected_ma", "1300.00").
fn has_value(art: &str, name: &str, value: &str) -> bool {
    art.contains(&format!("<th scope=\"row\">{name}</th><td class=\"num\">{value}</td>"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[apply(e2e!)]
#[tokio::test]
async fn the_findings_pages_link_every_finding_to_its_explanation_with_the_worked_figures() {
    let app = spawn_app().await;
    let [u, _b, _c, t] = fixture(&app).await;
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    let u_id = coverage_id(&mut civil, "UNINSURED", &u).await;
    let t_id = coverage_id(&mut civil, "PREMIUM_SUBSIDY_MISMATCH", &t).await;
    let answer = |id: &str, state: pb::AnswerState, reason: &str| pb::AnswerFindingRequest {
        finding_id: id.into(),
        state: state as i32,
        reason: reason.into(),
        purpose: "findings page test".into(),
        ..Default::default()
    };
    mi.medical.answer_finding(answer(&u_id, pb::AnswerState::InProgress, "")).await.unwrap();
    let reason = "<b>the hospital</b> re-sent the file & it was paid";
    mi.medical.answer_finding(answer(MEDICAL[0], pb::AnswerState::Disputed, reason)).await.unwrap();

    let certs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    doudi::client::findings_page::run(page_args(&app, certs.path(), "civil_affairs", out.path())).await.unwrap();
    let written = pages(out.path());
    // Seven findings, three a page: three files, named as the quarterly page links them.
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["findings-2023Q2-p2.html", "findings-2023Q2-p3.html", "findings-2023Q2.html"]);

    // A row per finding, each once; coverage first (by code: PREMIUM_SUBSIDY_MISMATCH, UNINSURED), then medical.
    let mut listed = Vec::new();
    for name in ["findings-2023Q2.html", "findings-2023Q2-p2.html", "findings-2023Q2-p3.html"] {
        let html = &written.iter().find(|(n, _)| n == name).unwrap().1;
        for (a, id) in rows(html) {
            // The link resolves on the same page, to the explanation of that finding, as ExplainFinding gives it.
            assert_eq!(a, anchor(&id));
            let art = article(html, &a);
            assert!(art.contains(&format!(". {}</h3>", escape(&id))), "{art}");
            let e = civil
                .medical
                .explain_finding(pb::ExplainFindingRequest { finding_id: id.clone(), purpose: "test".into() })
                .await
                .unwrap()
                .into_inner();
            for l in e.inputs.iter().chain(&e.parameters).chain(&e.steps).chain(e.test.as_slice()) {
                let row = format!(
                    "<th scope=\"row\">{}</th><td class=\"{}\">{}</td><td class=\"text\">{}</td><td class=\"text\">{}\
                     </td>",
                    escape(&l.name),
                    if l.value.len() == 64 { "hash" } else { "num" },
                    escape(&l.value),
                    escape(&l.zh),
                    escape(&l.en)
                );
                assert!(art.contains(&row), "{id}: {row} missing");
            }
            assert!(art.contains("与存储一致 Agrees with the stored finding: 是 yes"), "{id}");
            listed.push(id);
        }
    }
    let mut want = vec![t_id.clone(), u_id.clone()];
    want.extend(MEDICAL.iter().map(|s| s.to_string()));
    assert_eq!(listed.len(), 7);
    assert_eq!(listed[..2], want[..2], "coverage first, by code");
    assert_eq!(listed.iter().collect::<BTreeSet<_>>(), want.iter().collect::<BTreeSet<_>>());

    let page_of = |id: &str| -> &str {
        &written.iter().find(|(_, h)| h.contains(&format!("id=\"{}\"", anchor(id)))).expect("a page").1
    };
    // Example B (docs/spec/medical.md): after basic 10,000 − 6,000 = 4,000.00; CII deductible 10,000.00 not
    // reached: owed 0.00; residual 4,000.00; MA deductible 10% × 20,000 = 2,000.00, 65%: owed 1,300.00; nothing paid.
    let b = article(page_of(MEDICAL[0]), &anchor(MEDICAL[0]));
    for (name, value) in [
        ("after_basic", "4000.00"),
        ("cii_deductible_left", "10000.00"),
        ("expected_cii", "0.00"),
        ("residual", "4000.00"),
        ("ma_deductible_left", "2000.00"),
        ("ma_ratio", "65%"),
        ("expected_ma", "1300.00"),
    ] {
        assert!(has_value(b, name, value), "B: {name} = {value}");
    }
    assert!(b.contains("owed 1300.00 − paid 0.00 = 1300.00 &gt; tolerance 1.00, nothing paid"), "{b}");
    assert!(b.contains("应付 1300.00 − 已付 0.00 = 1300.00 &gt; 容差 1.00，且未支付"), "{b}");
    // B's answer, its reason escaped.
    assert!(b.contains("disputed 有异议 (version 1, "), "{b}");
    assert!(b.contains(&escape(reason)) && !b.contains("<b>the hospital"), "{b}");
    // Example C: no group, no assistance owed, 500.00 paid.
    let c = article(page_of(MEDICAL[1]), &anchor(MEDICAL[1]));
    assert!(has_value(c, "group", "none") && has_value(c, "assisted", "no"), "{c}");
    assert!(c.contains("no assistance group and assistance paid 500.00 &gt; 0"), "{c}");
    // Example E, after D in the same year: after basic 40,000 − 22,000 = 18,000.00; the CII deductible used up by D;
    // CII owed 18,000 × 65% = 11,700.00; residual 18,000 − 6,000 = 12,000.00; cap left 20,000 − 10,250 = 9,750.00;
    // MA owed min(12,000, 9,750) = 9,750.00; paid in the year 10,250 + 12,000 = 22,250.00.
    for (id, test) in [
        (MEDICAL[2], "critical illness owed 11700.00 − paid 6000.00 = 5700.00 &gt; tolerance 1.00 (tilted group)"),
        (MEDICAL[3], "paid 12000.00 − owed 9750.00 = 2250.00 &gt; tolerance 1.00"),
        (MEDICAL[4], "assistance paid in the year 22250.00 &gt; annual cap 20000.00"),
    ] {
        let e = article(page_of(id), &anchor(id));
        for (name, value) in [
            ("after_basic", "18000.00"),
            ("cii_deductible_left", "0.00"),
            ("expected_cii", "11700.00"),
            ("residual", "12000.00"),
            ("cap_left_before", "9750.00"),
            ("expected_ma", "9750.00"),
            ("paid_in_year", "22250.00"),
        ] {
            assert!(has_value(e, name, value), "{id}: {name} = {value}");
        }
        assert!(e.contains(test), "{id}: {test}");
    }
    // U's UNINSURED: enrolled in DIBAO (civil_affairs/AS-U/1), no 2023 insurance; answered IN_PROGRESS.
    let u_art = article(page_of(&u_id), &anchor(&u_id));
    assert!(has_value(u_art, "programs", "DIBAO (civil_affairs/AS-U/1)") && has_value(u_art, "insurance", "none"));
    assert!(u_art.contains("in progress 整改中 (version 1, "), "{u_art}");

    // The pages hold person keys, never ID numbers.
    for (name, html) in &written {
        for person in [&u, &t] {
            assert!(!html.contains(person.as_str()), "{name} shows an ID number");
        }
    }

    // The quarterly page beside them links to the first (sections 4 and 5), and every link resolves to a file.
    let mut lg = app.client("leading_group").await;
    let s = lg
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
        .await
        .unwrap()
        .into_inner();
    let summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_value(doudi::grpc::snapshot::struct_to_json(s.summary.unwrap())).unwrap();
    let links = doudi::report::FindingsLinks::beside(&summary);
    let html = String::from_utf8(doudi::report::render_quarterly_html(&summary, &links).unwrap()).unwrap();
    let hrefs: Vec<&str> =
        html.split("href=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).filter(|h| !h.starts_with('#')).collect();
    assert_eq!(hrefs, ["findings-2023Q2.html", "findings-2023Q2.html"], "sections 4 and 5");
    assert!(out.path().join(hrefs[0]).is_file());
    app.stop().await;
}

/// Filters and who may read what: a code selects its kind; the answer filter; education reads no medical findings
/// (the page says so) and only the coverage findings naming it (none here); a quarter not frozen is an error.
#[apply(e2e!)]
#[tokio::test]
async fn the_findings_pages_filter_and_show_only_what_the_caller_may_read() {
    let app = spawn_app().await;
    let [u, ..] = fixture(&app).await;
    let certs = tempfile::tempdir().unwrap();
    let mut civil = app.client("civil_affairs").await;
    let u_id = coverage_id(&mut civil, "UNINSURED", &u).await;
    let read = |args: PageArgs| async move {
        doudi::client::findings_page::run(args.clone()).await.map(|()| {
            let written = pages(&args.output);
            written.iter().flat_map(|(_, h)| rows(h).into_iter().map(|(_, id)| id)).collect::<Vec<_>>()
        })
    };
    // --code OVER_ASSISTED: only E's finding of that code (medical).
    let out = tempfile::tempdir().unwrap();
    let args =
        PageArgs { code: Some("OVER_ASSISTED".into()), ..page_args(&app, certs.path(), "civil_affairs", out.path()) };
    assert_eq!(read(args).await.unwrap(), [MEDICAL[3]]);
    // --kind coverage --agency medical_insurance: both coverage findings name it; --answer in-progress after U's answer.
    let out = tempfile::tempdir().unwrap();
    let args = PageArgs {
        kind: KindArg::Coverage,
        agency: Some("medical_insurance".into()),
        ..page_args(&app, certs.path(), "civil_affairs", out.path())
    };
    assert_eq!(read(args).await.unwrap().len(), 2);
    let mut mi = app.client("medical_insurance").await;
    mi.medical
        .answer_finding(pb::AnswerFindingRequest {
            finding_id: u_id.clone(),
            state: pb::AnswerState::InProgress as i32,
            purpose: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let args =
        PageArgs { answer: Some(AnswerArg::InProgress), ..page_args(&app, certs.path(), "civil_affairs", out.path()) };
    assert_eq!(read(args).await.unwrap(), [u_id]);
    // --limit 2 of 7: the first two, and the page says it was cut.
    let out = tempfile::tempdir().unwrap();
    let args = PageArgs { limit: Some(2), ..page_args(&app, certs.path(), "civil_affairs", out.path()) };
    assert_eq!(read(args.clone()).await.unwrap().len(), 2);
    assert!(pages(&args.output)[0].1.contains("Limited to the first 2 of 7 findings"));
    // education: no medical findings (no read_findings), no coverage finding names it.
    let out = tempfile::tempdir().unwrap();
    let args = page_args(&app, certs.path(), "education", out.path());
    assert!(read(args.clone()).await.unwrap().is_empty());
    assert!(pages(&args.output)[0].1.contains("Medical findings are not shown"));
    // Refused: a code of neither kind; a quarter not frozen (NOT_FOUND from the hub).
    let out = tempfile::tempdir().unwrap();
    let args = PageArgs { code: Some("NOPE".into()), ..page_args(&app, certs.path(), "civil_affairs", out.path()) };
    assert!(read(args).await.unwrap_err().to_string().contains("--code NOPE"));
    let args = PageArgs {
        code: Some("UNINSURED".into()),
        kind: KindArg::Medical,
        ..page_args(&app, certs.path(), "civil_affairs", out.path())
    };
    assert!(
        read(args).await.unwrap_err().to_string().contains("--code UNINSURED: a coverage rule, but --kind medical")
    );
    let args = PageArgs { quarter: "2023Q3".into(), ..page_args(&app, certs.path(), "civil_affairs", out.path()) };
    let e = read(args).await.unwrap_err().to_string();
    assert!(e.contains("NotFound"), "{e}");
    app.stop().await;
}
