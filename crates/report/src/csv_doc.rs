//! CSV: one document, one block per table (the `report` table of dates first), blocks separated by one blank line.
//! Each block has its own header row `section,<field>,…` and data rows `<table key>,<value>,…` (module docs of
//! `report`). Values are plain: `1008705.50`, `2452`, `<5`, empty for a missing value.

use super::table::{Document, Table};

fn block(t: &Table) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(std::iter::once("section").chain(t.columns.iter().map(|c| c.field)))?;
    for row in &t.rows {
        w.write_record(std::iter::once(t.key.to_owned()).chain(row.iter().map(|c| c.plain())))?;
    }
    Ok(w.into_inner()?)
}

/// The whole document as CSV (UTF-8, `\n` line ends, quoting only where needed).
pub(crate) fn render(doc: &Document) -> anyhow::Result<Vec<u8>> {
    let tables = std::iter::once(&doc.meta).chain(doc.sections.iter().flat_map(|s| &s.tables));
    let mut out = Vec::new();
    for (i, t) in tables.enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend(block(t)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::{Format, example, render_quarterly};

    /// The rows of one block, parsed back with the `csv` crate.
    fn block_rows(csv_text: &str, key: &str) -> Vec<Vec<String>> {
        let block = csv_text
            .split("\n\n")
            .find(|b| b.lines().nth(1).is_some_and(|l| l.starts_with(&format!("{key},"))))
            .unwrap_or_else(|| panic!("no block {key}"));
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(block.as_bytes());
        r.records().map(|rec| rec.unwrap().iter().map(str::to_owned).collect()).collect()
    }

    #[test]
    fn quarterly_csv_blocks_carry_the_section_and_plain_numbers() {
        let text = String::from_utf8(render_quarterly(&example::quarterly(), Format::Csv).unwrap()).unwrap();
        // 1 report + 1 headline + 1 county × program + 1 change + 1 coverage + 3 medical + 2 fund + 2 warnings
        // + 1 late + 1 standards + 2 snapshot (hashes, countersignatures) + 2 findings by agency (coverage, medical)
        // = 18 blocks.
        assert_eq!(text.split("\n\n").count(), 18);
        assert!(text.starts_with("section,indicator,value\nreport,quarter,2023Q2\nreport,as_of,2023-06-30\n"));

        let headline = block_rows(&text, "headline");
        assert_eq!(headline[0], ["section", "indicator", "value"]);
        assert!(headline.contains(&vec!["headline".into(), "dibao_tekun_persons".into(), "2452".into()]));
        assert!(headline.contains(&vec!["headline".into(), "monthly_benefit_total".into(), "1008705.50".into()]));

        let cells = block_rows(&text, "by_county_program");
        assert_eq!(
            cells[0],
            ["section", "county_code", "county_name", "program", "persons", "households", "monthly_benefit"]
        );
        assert_eq!(cells[3], ["by_county_program", "621022", "环县", "HIV_AFFECTED_CHILD", "<5", "<5", "0.00"]);
        assert_eq!(cells.len(), 1 + 6);

        // 2023-06 RURAL_DIBAO: only 环县 reported, 380,000.00 yuan for 1,010 recipients.
        let totals = block_rows(&text, "fund_report_totals");
        assert_eq!(totals[5], ["fund_report_totals", "2023-06", "RURAL_DIBAO", "380000.00", "1010", "1"]);
        let missing = &block_rows(&text, "fund_reports")[11];
        assert_eq!(
            missing,
            &["fund_reports", "2023-06", "621027", "镇原县", "RURAL_DIBAO", "MISSING", "", "", "301500.00", ""]
        );

        // example::quarterly: civil_affairs signed 2023-07-06 01:30 UTC (version 1), education 2023-07-10 08:00 (2).
        let signed = block_rows(&text, "countersignatures");
        assert_eq!(signed[0], ["section", "agency", "signed_at", "version"]);
        assert_eq!(signed[1], ["countersignatures", "civil_affairs", "2023-07-06T01:30:00Z", "1"]);
        assert_eq!(signed[2], ["countersignatures", "education", "2023-07-10T08:00:00Z", "2"]);

        // example::quarterly: 2023Q1's 6 findings naming medical_insurance, 3 fixed, 2 confirmed, median 20 days.
        let by_agency = block_rows(&text, "findings_by_agency");
        assert_eq!(
            by_agency[1],
            ["findings_by_agency", "medical_insurance", "2023Q1", "6", "3", "2", "1", "1", "1", "4", "20"]
        );

        // example::quarterly: 4 medical findings of 2023Q1, 1 fixed and confirmed, 3 still open, median 12 days.
        assert_eq!(
            block_rows(&text, "medical_findings_by_agency")[1],
            ["medical_findings_by_agency", "medical_insurance", "2023Q1", "4", "1", "1", "1", "0", "2", "3", "12"]
        );

        let standards = block_rows(&text, "standards");
        assert_eq!(
            standards[1],
            ["standards", "URBAN_DIBAO_STANDARD", "城市低保标准", "2022", "680.00", "2023", "700.00", "3"]
        );
    }
}
