//! Hand-built example summaries for the renderers' tests and for previews: made-up figures for two Qingyang counties
//! (环县 621022 and 镇原县 621027), consistent with each other so that a test can check a rendered number against a
//! hand calculation. The sums are written beside the values.

use chrono::{NaiveDate, TimeZone, Utc};

use doudi_domain::money::Money;
use doudi_domain::summary::{
    AgencyFindings, CodeCount, Count, Countersigned, CountyCodeCount, CountyCount, CountyProgramRow, CoverageRow,
    FundReportRow, FundReportSection, FundReportTotal, Headline, LateCorrection, MedicalSection, MonthlyReport,
    ProgramChange, QuarterlySummary, SnapshotHashes, StandardChange, Tiers, WarningSection,
};

/// `Money` from its wire form; the examples' literals are all valid.
fn y(s: &str) -> Money {
    Money::parse(s).expect("example amounts are valid wire money")
}

fn cell(code: &str, name: &str, program: &str, persons: Count, households: Count, benefit: &str) -> CountyProgramRow {
    CountyProgramRow {
        county_code: code.to_owned(),
        county_name: name.to_owned(),
        program: program.to_owned(),
        persons,
        households,
        monthly_benefit: y(benefit),
    }
}

#[allow(clippy::too_many_arguments)]
fn fund_row(
    month: &str,
    county: &str,
    program: &str,
    status: &str,
    amount: Option<&str>,
    recipients: Option<u64>,
    expected: Option<&str>,
    finding: &str,
) -> FundReportRow {
    FundReportRow {
        month: month.to_owned(),
        county_code: county.to_owned(),
        program: program.to_owned(),
        status: status.to_owned(),
        amount: amount.map(y),
        recipients,
        expected: expected.map(y),
        finding: finding.to_owned(),
    }
}

fn total(month: &str, program: &str, amount: &str, recipients: u64, counties: u64) -> FundReportTotal {
    FundReportTotal { month: month.to_owned(), program: program.to_owned(), amount: y(amount), recipients, counties }
}

const HUAN: &str = "621022";
const ZHENYUAN: &str = "621027";

/// A quarterly summary for 2023Q2 (made-up figures).
///
/// Hand calculation of what the tests check:
/// - county × program: DIBAO 环县 1,204 persons / 530 households / 451,290.00 yuan, 镇原县 987 / 436 / 372,105.50;
///   TEKUN 环县 143 / 143 / 101,530.00 (143 × 710), 镇原县 118 / 118 / 83,780.00 (118 × 710); HIV_AFFECTED_CHILD
///   环县 suppressed (<5), 镇原县 6 persons / 5 households.
/// - headline: dibao 1,204 + 987 = 2,191; tekun 143 + 118 = 261; together 2,452; dibao households 530 + 436 = 966;
///   monthly benefits 451,290.00 + 372,105.50 + 101,530.00 + 83,780.00 = 1,008,705.50 yuan.
/// - change: DIBAO 2,150 + 96 − 55 = 2,191; TEKUN 255 + 12 − 6 = 261; HIV_AFFECTED_CHILD 8 → 9 (entries and exits
///   suppressed).
/// - coverage findings 4 + 2 + 3 + 1 = 10.
/// - medical: total cost 1,862,400.00 = basic 1,024,320.00 (55%) + critical illness 186,240.00 (10%) + medical
///   assistance 372,480.00 (20%) + out of pocket 279,360.00 (15%); findings 5 + 3 + 2 + 1 = 11.
/// - fund reports: 12 cells (3 months × 2 counties × 2 programs), 10 ON_TIME, 1 LATE (镇原县 TEKUN 2023-05), 1 MISSING
///   (镇原县 RURAL_DIBAO 2023-06); totals 2023-04 RURAL_DIBAO 380,000.00 + 301,500.00 = 681,500.00 (1,010 + 820 = 1,830
///   recipients), TEKUN 101,530.00 + 83,780.00 = 185,310.00 (143 + 118 = 261); 2023-06 RURAL_DIBAO 380,000.00 (1
///   county).
/// - warnings: 37 received (22 + 15), 31 closed: clearance 31 / 37 = 83.8% → 84%.
pub fn quarterly() -> QuarterlySummary {
    let v = Count::Value;
    let by_county_program = vec![
        cell(HUAN, "环县", "DIBAO", v(1204), v(530), "451290.00"),
        cell(HUAN, "环县", "TEKUN", v(143), v(143), "101530.00"),
        cell(HUAN, "环县", "HIV_AFFECTED_CHILD", Count::Suppressed, Count::Suppressed, "0.00"),
        cell(ZHENYUAN, "镇原县", "DIBAO", v(987), v(436), "372105.50"),
        cell(ZHENYUAN, "镇原县", "TEKUN", v(118), v(118), "83780.00"),
        cell(ZHENYUAN, "镇原县", "HIV_AFFECTED_CHILD", v(6), v(5), "0.00"),
    ];
    let change = vec![
        ProgramChange {
            program: "DIBAO".into(),
            previous: Some(v(2150)),
            current: v(2191),
            entries: v(96),
            exits: v(55),
        },
        ProgramChange { program: "TEKUN".into(), previous: Some(v(255)), current: v(261), entries: v(12), exits: v(6) },
        ProgramChange {
            program: "HIV_AFFECTED_CHILD".into(),
            previous: Some(v(8)),
            current: v(9),
            entries: Count::Suppressed,
            exits: Count::Suppressed,
        },
    ];
    let coverage_row = |code: &str, agency: &str, county: &str, count| CoverageRow {
        code: code.into(),
        agency_to_act: agency.into(),
        county_code: county.into(),
        count,
    };
    let coverage = vec![
        coverage_row("UNINSURED", "medical_insurance", HUAN, 4),
        coverage_row("UNINSURED", "medical_insurance", ZHENYUAN, 2),
        coverage_row("DISABILITY_LIVING_SUBSIDY_MISSING", "disability_federation", HUAN, 3),
        coverage_row("TEKUN_EMPLOYED", "civil_affairs", ZHENYUAN, 1),
    ];
    let code_count = |code: &str, count| CodeCount { code: code.into(), count };
    let findings_by_code = [
        ("NOT_INSURED", 0),
        ("ASSISTANCE_TO_INELIGIBLE", 0),
        ("TIER_ORDER_VIOLATION", 0),
        ("ASSISTANCE_MISSED", 5),
        ("UNDER_ASSISTED", 3),
        ("OVER_ASSISTED", 0),
        ("ANNUAL_CAP_EXCEEDED", 0),
        ("CII_TILT_NOT_APPLIED", 0),
        ("DUPLICATE_SUSPECTED", 2),
        ("HIGH_BURDEN", 1),
        ("TILTED_ASSISTANCE_CANDIDATE", 0),
    ]
    .into_iter()
    .map(|(c, n)| code_count(c, n))
    .collect();
    let county_code_count =
        |county: &str, code: &str, count| CountyCodeCount { county_code: county.into(), code: code.into(), count };
    let medical = MedicalSection {
        settlements: 412,
        persons: 298,
        persons_assisted: 251,
        total_cost: y("1862400.00"),
        out_of_pocket: y("279360.00"),
        paid: Tiers { basic: y("1024320.00"), critical_illness: y("186240.00"), medical_assistance: y("372480.00") },
        findings_by_code,
        findings_by_county: vec![
            county_code_count(HUAN, "ASSISTANCE_MISSED", 3),
            county_code_count(HUAN, "DUPLICATE_SUSPECTED", 2),
            county_code_count(HUAN, "HIGH_BURDEN", 1),
            county_code_count(ZHENYUAN, "ASSISTANCE_MISSED", 2),
            county_code_count(ZHENYUAN, "UNDER_ASSISTED", 3),
        ],
    };
    let mut rows = Vec::new();
    for month in ["2023-04", "2023-05", "2023-06"] {
        rows.push(fund_row(
            month,
            HUAN,
            "RURAL_DIBAO",
            "ON_TIME",
            Some("380000.00"),
            Some(1010),
            Some("380000.00"),
            "",
        ));
        rows.push(fund_row(month, HUAN, "TEKUN", "ON_TIME", Some("101530.00"), Some(143), Some("101530.00"), ""));
        rows.push(match month {
            "2023-05" => fund_row(
                month,
                ZHENYUAN,
                "RURAL_DIBAO",
                "ON_TIME",
                Some("301500.00"),
                Some(820),
                Some("305100.00"),
                "DISBURSEMENT_MISMATCH",
            ),
            "2023-06" => fund_row(month, ZHENYUAN, "RURAL_DIBAO", "MISSING", None, None, Some("301500.00"), ""),
            _ => {
                fund_row(month, ZHENYUAN, "RURAL_DIBAO", "ON_TIME", Some("301500.00"), Some(820), Some("301500.00"), "")
            }
        });
        let status = if month == "2023-05" { "LATE" } else { "ON_TIME" };
        rows.push(fund_row(month, ZHENYUAN, "TEKUN", status, Some("83780.00"), Some(118), Some("83780.00"), ""));
    }
    let fund_reports = FundReportSection {
        rows,
        totals: vec![
            total("2023-04", "RURAL_DIBAO", "681500.00", 1830, 2),
            total("2023-04", "TEKUN", "185310.00", 261, 2),
            total("2023-05", "RURAL_DIBAO", "681500.00", 1830, 2),
            total("2023-05", "TEKUN", "185310.00", 261, 2),
            total("2023-06", "RURAL_DIBAO", "380000.00", 1010, 1),
            total("2023-06", "TEKUN", "185310.00", 261, 2),
        ],
    };
    let warnings = WarningSection {
        received: 37,
        visited_within_3_working_days: 33,
        decided_within_5_working_days: 30,
        overdue: 2,
        assisted: 19,
        closed: 31,
        clearance_rate_pct: Some(84),
        by_county: vec![
            CountyCount { county_code: HUAN.into(), count: 22 },
            CountyCount { county_code: ZHENYUAN.into(), count: 15 },
        ],
        provisional: 0,
    };
    let standard = |item: &str, name: &str, previous: &str, current: &str, pct| StandardChange {
        item: item.into(),
        name: name.into(),
        previous_year: 2022,
        previous: Some(y(previous)),
        current_year: 2023,
        current: y(current),
        change_pct: Some(pct),
    };
    QuarterlySummary {
        quarter: "2023Q2".into(),
        as_of: NaiveDate::from_ymd_opt(2023, 6, 30).expect("valid date"),
        knowledge_cutoff: Utc.with_ymd_and_hms(2023, 7, 5, 2, 0, 0).single().expect("valid instant"),
        previous_quarter: Some("2023Q1".into()),
        headline: Headline {
            dibao_tekun_persons: 2452,
            dibao_persons: 2191,
            tekun_persons: 261,
            all_persons: 2461,
            dibao_households: 966,
            monthly_benefit_total: y("1008705.50"),
            coverage_findings: 10,
            medical_findings: 11,
            warnings_received: 37,
            fund_reports_on_time: 10,
            fund_reports_late: 1,
            fund_reports_missing: 1,
        },
        by_county_program,
        change,
        coverage,
        medical,
        fund_reports,
        warnings,
        late_corrections: vec![
            LateCorrection { agency: "civil_affairs".into(), kind: "assistance".into(), facts: 14, persons: 11 },
            LateCorrection {
                agency: "medical_insurance".into(),
                kind: "medical_insurance".into(),
                facts: 3,
                persons: 3,
            },
        ],
        // The letter's figures (docs/domain/qingyang-figures.md §3): 680 → 700 (+3%), 584 → 607 (+4%).
        standards: vec![
            standard("URBAN_DIBAO_STANDARD", "城市低保标准", "680.00", "700.00", 3),
            standard("URBAN_DIBAO_AVERAGE_SUBSIDY", "城市低保月人均补助水平", "584.00", "607.00", 4),
        ],
        snapshot: SnapshotHashes {
            content_hash: "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a0c2e4f6a8b0d2f4e6a8c0e".into(),
            previous_hash: "1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c".into(),
        },
        countersignatures: vec![
            Countersigned {
                agency: "civil_affairs".into(),
                signed_at: Utc.with_ymd_and_hms(2023, 7, 6, 1, 30, 0).single().expect("valid instant"),
                version: 1,
            },
            Countersigned {
                agency: "education".into(),
                signed_at: Utc.with_ymd_and_hms(2023, 7, 10, 8, 0, 0).single().expect("valid instant"),
                version: 2,
            },
        ],
        // 2023Q1 raised 6 findings naming medical_insurance: 3 fixed (2 no longer raised by 2023Q2), 1 disputed, 1 in
        // progress, 1 unanswered; 4 raised again (1 fixed + disputed + in progress + unanswered); fixed after 9, 20
        // and 41 days: median 20.
        findings_by_agency: vec![AgencyFindings {
            agency: "medical_insurance".into(),
            raised_in: "2023Q1".into(),
            findings: 6,
            fixed: 3,
            confirmed_fixed: 2,
            disputed: 1,
            in_progress: 1,
            unanswered: 1,
            still_open: 4,
            median_days_to_fix: Some(20),
        }],
        // 2023Q1's settlements raised 4 medical findings naming medical_insurance: 1 fixed and resolved by a recheck
        // (confirmed) after 12 days, 1 disputed, 2 unanswered; 3 still open at 2023Q2's cutoff.
        medical_findings_by_agency: vec![AgencyFindings {
            agency: "medical_insurance".into(),
            raised_in: "2023Q1".into(),
            findings: 4,
            fixed: 1,
            confirmed_fixed: 1,
            disputed: 1,
            in_progress: 0,
            unanswered: 2,
            still_open: 3,
            median_days_to_fix: Some(12),
        }],
        campaigns: None,
    }
}

/// [`quarterly`] with section 12, the subsidy campaigns of 2023Q2 (made-up figures).
///
/// Hand calculation: the linkage decided subsidy months 2023-04 … 2023-06 on the indices of March–May 2023 (CPI 0.7,
/// 0.1, 0.2 %; food CPI 2.4, 0.4, 1.0 %) under version 621000-1553-2021 (thresholds 3.50 and 6.00): none triggered, so
/// no county row. A fixed campaign of 2023-05 pays 300.00 yuan a person to dibao and tekun persons: 环县 1,210 + 144 =
/// 1,354 persons × 300.00 = 406,200.00 owed, 405,900.00 reported (300.00 short, beyond the 1.00 tolerance: MISMATCH);
/// 镇原县 990 + 118 = 1,108 persons × 300.00 = 332,400.00 owed, no report: MISSING.
pub fn quarterly_with_campaigns() -> QuarterlySummary {
    use doudi_domain::summary::campaigns::{
        CampaignCounty, CampaignMonth, CampaignSection, IndexComparison, LINKAGE, QuarterCampaign,
    };
    let cmp = |index: &str, rise: &str, threshold: &str| IndexComparison {
        index: index.into(),
        rise: rise.into(),
        threshold: threshold.into(),
        crossed: false,
    };
    let linkage_month = |month: &str, index_month: &str, cpi: &str, food: &str| CampaignMonth {
        month: month.into(),
        rule: "621000-1553-2021".into(),
        index_month: Some(index_month.into()),
        index_version: Some(1),
        comparisons: vec![cmp("CPI", cpi, "3.50"), cmp("FOOD_CPI", food, "6.00")],
        triggered: false,
    };
    let mut s = quarterly();
    s.campaigns = Some(CampaignSection {
        tolerance: y("1.00"),
        campaigns: vec![
            QuarterCampaign {
                campaign: LINKAGE.into(),
                name: "价格临时补贴".into(),
                program: "PRICE_SUBSIDY".into(),
                months: vec![
                    linkage_month("2023-04", "2023-03", "0.70", "2.40"),
                    linkage_month("2023-05", "2023-04", "0.10", "0.40"),
                    linkage_month("2023-06", "2023-05", "0.20", "1.00"),
                ],
                counties: Vec::new(),
            },
            QuarterCampaign {
                campaign: "621000-2023-05-example".into(),
                name: "一次性生活补贴（示例）".into(),
                program: "ONE_TIME_SUBSIDY".into(),
                months: vec![CampaignMonth {
                    month: "2023-05".into(),
                    rule: "621000-2023-05-example".into(),
                    index_month: None,
                    index_version: None,
                    comparisons: Vec::new(),
                    triggered: true,
                }],
                counties: vec![
                    CampaignCounty {
                        county_code: HUAN.into(),
                        persons: 1354,
                        person_times: 1354,
                        amount_owed: y("406200.00"),
                        amount_reported: Some(y("405900.00")),
                        finding: "MISMATCH".into(),
                    },
                    CampaignCounty {
                        county_code: ZHENYUAN.into(),
                        persons: 1108,
                        person_times: 1108,
                        amount_owed: y("332400.00"),
                        amount_reported: None,
                        finding: "MISSING".into(),
                    },
                ],
            },
        ],
    });
    s
}

/// A monthly report for 2023-07 (made-up figures).
///
/// Hand calculation: DIBAO 环县 1,210 + 镇原县 990 persons; TEKUN 144 + 118; fund reports of July: RURAL_DIBAO
/// 380,000.00 + 301,500.00 = 681,500.00 (1,010 + 820 = 1,830 recipients), TEKUN 环县 102,240.00 (144 × 710) and 镇原县
/// missing; warnings 13 received (8 + 5), 9 closed: 9 / 13 = 69.2% → 69%.
pub fn monthly() -> MonthlyReport {
    let v = Count::Value;
    MonthlyReport {
        month: "2023-07".into(),
        as_of: NaiveDate::from_ymd_opt(2023, 7, 31).expect("valid date"),
        by_county_program: vec![
            cell(HUAN, "环县", "DIBAO", v(1210), v(533), "453540.00"),
            cell(HUAN, "环县", "TEKUN", v(144), v(144), "102240.00"),
            cell(HUAN, "环县", "HIV_AFFECTED_CHILD", Count::Suppressed, Count::Suppressed, "0.00"),
            cell(ZHENYUAN, "镇原县", "DIBAO", v(990), v(437), "373220.00"),
            cell(ZHENYUAN, "镇原县", "TEKUN", v(118), v(118), "83780.00"),
        ],
        fund_reports: FundReportSection {
            rows: vec![
                fund_row(
                    "2023-07",
                    HUAN,
                    "RURAL_DIBAO",
                    "ON_TIME",
                    Some("380000.00"),
                    Some(1010),
                    Some("380000.00"),
                    "",
                ),
                fund_row("2023-07", HUAN, "TEKUN", "LATE", Some("102240.00"), Some(144), Some("102240.00"), ""),
                fund_row(
                    "2023-07",
                    ZHENYUAN,
                    "RURAL_DIBAO",
                    "ON_TIME",
                    Some("301500.00"),
                    Some(820),
                    Some("301500.00"),
                    "",
                ),
                fund_row("2023-07", ZHENYUAN, "TEKUN", "MISSING", None, None, Some("83780.00"), ""),
            ],
            totals: vec![
                total("2023-07", "RURAL_DIBAO", "681500.00", 1830, 2),
                total("2023-07", "TEKUN", "102240.00", 144, 1),
            ],
        },
        warnings: WarningSection {
            received: 13,
            visited_within_3_working_days: 12,
            decided_within_5_working_days: 11,
            overdue: 1,
            assisted: 6,
            closed: 9,
            clearance_rate_pct: Some(69),
            by_county: vec![
                CountyCount { county_code: HUAN.into(), count: 8 },
                CountyCount { county_code: ZHENYUAN.into(), count: 5 },
            ],
            provisional: 0,
        },
        medical_findings_by_code: vec![
            CodeCount { code: "ASSISTANCE_MISSED".into(), count: 2 },
            CodeCount { code: "HIGH_BURDEN".into(), count: 1 },
        ],
        campaigns: vec![doudi_domain::summary::CampaignRow {
            campaign: "621000-2023-07-example".into(),
            program: "ONE_TIME_SUBSIDY".into(),
            triggered: true,
            county_code: HUAN.into(),
            persons: 1354,
            amount_owed: Money::parse("316944.00").expect("valid"),
            amount_reported: Some(Money::parse("316944.00").expect("valid")),
            finding: String::new(),
        }],
    }
}
