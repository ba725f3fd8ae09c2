//! Section 12 of the quarterly summary as tables: the subsidy campaigns of the quarter (docs/subsidies.md "In the
//! quarterly summary"). Two tables: the months decided (each index against its threshold, triggered or not) and, when
//! any county was owed or reported anything, the county figures against the counties' reports.

use std::collections::BTreeMap;

use super::{Cell, Section, Table, col, county_name};
use doudi_domain::summary::campaigns::{CampaignSection, IndexComparison};

/// "6.10 / 6.0" for an index against its threshold; missing when the month has no such index (a fixed amount).
fn comparison(cs: &[IndexComparison], index: &str) -> Cell {
    cs.iter().find(|c| c.index == index).map_or(Cell::Missing, |c| Cell::Text(format!("{} / {}", c.rise, c.threshold)))
}

/// Section 12 ("Subsidy campaigns 补贴发放").
pub(super) fn section(number: u8, s: &CampaignSection, names: &BTreeMap<&str, &str>) -> Section {
    let months = Table {
        key: "campaign_months",
        caption: Some("Months decided 各月认定"),
        columns: vec![
            col("campaign", "Campaign 项目"),
            col("name", "Name 名称"),
            col("month", "Subsidy month 补贴月份"),
            col("rule", "Rule version 规则版本"),
            col("index_month", "Index month 指数月份"),
            col("cpi", "CPI rise / threshold (%) CPI涨幅/启动条件"),
            col("food_cpi", "Food CPI rise / threshold (%) 食品CPI涨幅/启动条件"),
            col("triggered", "Triggered 启动"),
        ],
        rows: s
            .campaigns
            .iter()
            .flat_map(|c| {
                c.months.iter().map(move |m| {
                    vec![
                        Cell::text(&c.campaign),
                        Cell::text(&c.name),
                        Cell::text(&m.month),
                        Cell::text(&m.rule),
                        m.index_month.as_deref().map_or(Cell::Missing, Cell::text),
                        comparison(&m.comparisons, "CPI"),
                        comparison(&m.comparisons, "FOOD_CPI"),
                        Cell::text(if m.triggered { "yes 是" } else { "no 否" }),
                    ]
                })
            })
            .collect(),
    };
    let counties = Table {
        key: "campaign_counties",
        caption: Some("Owed vs reported, by county 分县应发与已报"),
        columns: vec![
            col("campaign", "Campaign 项目"),
            col("program", "Fund program 资金项目"),
            col("county_code", "County code 县区代码"),
            col("county_name", "County 县区"),
            col("persons", "Persons owed 应发人数"),
            col("person_times", "Person-times 人次"),
            col("amount_owed", "Owed (yuan) 应发（元）"),
            col("amount_reported", "Reported (yuan) 已报（元）"),
            col("finding", "Finding 问题"),
        ],
        rows: s
            .campaigns
            .iter()
            .flat_map(|c| {
                c.counties.iter().map(move |r| {
                    vec![
                        Cell::text(&c.campaign),
                        Cell::text(&c.program),
                        Cell::text(&r.county_code),
                        county_name(names, &r.county_code),
                        Cell::int(r.persons),
                        Cell::int(r.person_times),
                        Cell::Money(r.amount_owed),
                        Cell::opt_money(r.amount_reported),
                        if r.finding.is_empty() { Cell::Missing } else { Cell::text(&r.finding) },
                    ]
                })
            })
            .collect(),
    };
    let mut tables = vec![months];
    if !counties.rows.is_empty() {
        tables.push(counties);
    }
    Section {
        number,
        id: "campaigns",
        en: "Subsidy campaigns",
        zh: "补贴发放",
        note: Some(
            "Decided by the hub when the quarter was frozen (docs/subsidies.md): price subsidies linked to prices \
             for each subsidy month whose index was pushed, and fixed-amount campaigns; owed against the counties' \
             reports of the program, MISMATCH beyond the tolerance per county and month, MISSING when a month owed \
             money and was not reported. Counties with nothing owed or reported are left out.",
        ),
        tables,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Format, example, render_quarterly};

    fn render(s: &doudi_domain::summary::QuarterlySummary, f: Format) -> String {
        String::from_utf8(render_quarterly(s, f).unwrap()).unwrap()
    }

    /// example::quarterly_with_campaigns (hand calculation there): three linkage months not triggered (e.g. 2023-04 on
    /// March's CPI 0.70 against 3.50 and food CPI 2.40 against 6.00), and a fixed campaign of 2023-05: 环县 1,354 ×
    /// 300.00 = 406,200.00 owed, 405,900.00 reported, MISMATCH; 镇原县 1,108 × 300.00 = 332,400.00 owed, MISSING.
    #[test]
    fn section_12_shows_the_months_and_the_counties_in_every_format() {
        let s = example::quarterly_with_campaigns();
        let md = render(&s, Format::Md);
        assert!(md.contains("## 12. Subsidy campaigns 补贴发放"), "{md}");
        assert!(
            md.contains(
                "| PRICE_SUBSIDY_LINKAGE | 价格临时补贴 | 2023-04 | 621000-1553-2021 | 2023-03 | 0.70 / 3.50 | 2.40 / 6.00 | no 否 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 621000-2023-05-example | ONE_TIME_SUBSIDY | 621022 | 环县 | 1,354 | 1,354 | 406,200.00 | 405,900.00 | MISMATCH |"),
            "{md}"
        );
        assert!(md.contains("| 621027 | 镇原县 | 1,108 | 1,108 | 332,400.00 | — | MISSING |"), "{md}");

        let csv = render(&s, Format::Csv);
        assert!(csv.contains(
            "campaign_counties,621000-2023-05-example,ONE_TIME_SUBSIDY,621022,环县,1354,1354,406200.00,405900.00,MISMATCH\n"
        ));
        assert!(csv.contains("campaign_months,PRICE_SUBSIDY_LINKAGE,价格临时补贴,2023-06,621000-1553-2021,2023-05,0.20 / 3.50,1.00 / 6.00,no 否\n"), "{csv}");

        let json = render(&s, Format::Json);
        assert_eq!(serde_json::from_str::<doudi_domain::summary::QuarterlySummary>(&json).unwrap(), s);
        assert!(json.contains("\"amount_owed\": \"406200.00\""), "{json}");

        let html = render(&s, Format::Html);
        assert!(html.contains("Subsidy campaigns 补贴发放") && html.contains("406,200.00"), "html");
        let xlsx = render_quarterly(&s, Format::Xlsx).unwrap();
        use calamine::Reader as _;
        let wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
        assert!(wb.sheet_names().iter().any(|n| n == "12 Subsidy campaigns 补贴发放"), "{:?}", wb.sheet_names());
    }

    /// Without a campaign month there is no section 12 in any format, and the JSON has no `campaigns` key.
    #[test]
    fn a_quarter_without_campaigns_has_no_section_12() {
        let s = example::quarterly();
        assert!(!render(&s, Format::Md).contains("Subsidy campaigns"));
        assert!(!render(&s, Format::Csv).contains("campaign_"));
        assert!(!render(&s, Format::Json).contains("\"campaigns\""));
    }

    /// A quarter whose months did not trigger and with no fixed campaign: the months table only.
    #[test]
    fn months_that_did_not_trigger_show_no_county_table() {
        let mut s = example::quarterly_with_campaigns();
        if let Some(c) = &mut s.campaigns {
            c.campaigns.truncate(1);
        }
        let md = render(&s, Format::Md);
        assert!(md.contains("Months decided 各月认定"), "{md}");
        assert!(!md.contains("Owed vs reported"), "{md}");
    }
}
