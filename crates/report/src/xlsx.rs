//! XLSX with `rust_xlsxwriter`: a sheet `0 Report 报告` with the dates, then one sheet per section. Header rows are
//! bold; money is a number cell formatted `#,##0.00` (yuan), counts are number cells formatted `#,##0`, years
//! number cells `0`, percentages whole-percent numbers shown with a `%` suffix (`84` → "84%", a change `3` → "+3%");
//! a suppressed count is the text cell `<5`; a missing value is an empty cell. A section with several tables stacks
//! them on its sheet: a bold caption row, the header row, the rows, then one empty row before the next.

use rust_xlsxwriter::{Format as XlsxFormat, Workbook, Worksheet};

use super::table::{Cell, Document, SUPPRESSED, Table};
use doudi_domain::money::Money;
use doudi_domain::summary::Count;

/// The cell formats of one workbook.
struct Styles {
    bold: XlsxFormat,
    money: XlsxFormat,
    count: XlsxFormat,
    year: XlsxFormat,
    percent: XlsxFormat,
    change: XlsxFormat,
    suppressed: XlsxFormat,
}

impl Styles {
    fn new() -> Styles {
        Styles {
            bold: XlsxFormat::new().set_bold(),
            money: XlsxFormat::new().set_num_format("#,##0.00"),
            count: XlsxFormat::new().set_num_format("#,##0"),
            year: XlsxFormat::new().set_num_format("0"),
            percent: XlsxFormat::new().set_num_format(r#"0"%""#),
            change: XlsxFormat::new().set_num_format(r#"+0"%";-0"%";0"%""#),
            suppressed: XlsxFormat::new().set_align(rust_xlsxwriter::FormatAlign::Right),
        }
    }
}

/// Yuan as an `f64` for a number cell: `fen / 100`, one correctly rounded division, so the cell holds the double
/// nearest to the exact amount (Excel stores every number as a double).
fn yuan_f64(m: Money) -> f64 {
    m.to_fen() as f64 / 100.0
}

fn write_cell(ws: &mut Worksheet, row: u32, col: u16, cell: &Cell, st: &Styles) -> anyhow::Result<()> {
    match cell {
        Cell::Text(s) => {
            ws.write_string(row, col, s)?;
        }
        Cell::Key { label, .. } => {
            ws.write_string(row, col, *label)?;
        }
        Cell::Count(Count::Value(v)) => {
            ws.write_number_with_format(row, col, *v as f64, &st.count)?;
        }
        Cell::Count(Count::Suppressed) => {
            ws.write_string_with_format(row, col, SUPPRESSED, &st.suppressed)?;
        }
        Cell::Year(y) => {
            ws.write_number_with_format(row, col, f64::from(*y), &st.year)?;
        }
        Cell::Money(m) => {
            ws.write_number_with_format(row, col, yuan_f64(*m), &st.money)?;
        }
        Cell::Percent(p) => {
            ws.write_number_with_format(row, col, *p as f64, &st.percent)?;
        }
        Cell::Change(p) => {
            ws.write_number_with_format(row, col, *p as f64, &st.change)?;
        }
        Cell::Missing => {}
    }
    Ok(())
}

/// Writes `t` from `row` on; returns the first row after it.
fn write_table(ws: &mut Worksheet, mut row: u32, t: &Table, with_caption: bool, st: &Styles) -> anyhow::Result<u32> {
    if let (true, Some(caption)) = (with_caption, t.caption) {
        ws.write_string_with_format(row, 0, caption, &st.bold)?;
        row += 1;
    }
    for (c, column) in t.columns.iter().enumerate() {
        ws.write_string_with_format(row, u16::try_from(c)?, column.label, &st.bold)?;
    }
    row += 1;
    for cells in &t.rows {
        for (c, cell) in cells.iter().enumerate() {
            write_cell(ws, row, u16::try_from(c)?, cell, st)?;
        }
        row += 1;
    }
    Ok(row)
}

/// The whole document as an XLSX workbook.
pub(crate) fn render(doc: &Document) -> anyhow::Result<Vec<u8>> {
    let st = Styles::new();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("0 Report 报告")?;
    ws.write_string_with_format(0, 0, &doc.title, &st.bold)?;
    write_table(ws, 2, &doc.meta, false, &st)?;
    ws.autofit();
    for section in &doc.sections {
        let ws = wb.add_worksheet();
        ws.set_name(section.sheet_name())?;
        let several = section.tables.len() > 1;
        let mut row = 0;
        for (i, t) in section.tables.iter().enumerate() {
            if i > 0 {
                row += 1;
            }
            row = write_table(ws, row, t, several, &st)?;
        }
        if !several {
            ws.set_freeze_panes(1, 0)?;
        }
        ws.autofit();
    }
    Ok(wb.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, DataType, Reader, Xlsx, open_workbook_from_rs};

    use crate::{Format, example, render_monthly, render_quarterly};

    fn open(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
        open_workbook_from_rs(Cursor::new(bytes)).expect("a readable workbook")
    }

    fn num(range: &calamine::Range<Data>, row: u32, col: u32) -> f64 {
        match range.get_value((row, col)) {
            Some(Data::Float(f)) => *f,
            Some(Data::Int(i)) => *i as f64,
            other => panic!("({row}, {col}) is not a number cell: {other:?}"),
        }
    }

    fn text(range: &calamine::Range<Data>, row: u32, col: u32) -> String {
        match range.get_value((row, col)) {
            Some(Data::String(s)) => s.clone(),
            other => panic!("({row}, {col}) is not a text cell: {other:?}"),
        }
    }

    #[test]
    fn quarterly_xlsx_has_a_sheet_per_section_with_numeric_cells() {
        let mut wb = open(render_quarterly(&example::quarterly(), Format::Xlsx).unwrap());
        assert_eq!(
            wb.sheet_names(),
            [
                "0 Report 报告",
                "1 Headline 概况",
                "2 County × program 分县分项目",
                "3 Change on last quarter 季度变化",
                "4 Coverage findings 覆盖核查",
                "5 Medical three tiers 医疗三重保障",
                "6 Fund reports 资金发放月报告",
                "7 Early warnings 动态监测预警",
                "8 Late corrections 迟到更正",
                "9 Standards 保障标准",
                "10 Snapshot 快照",
                "11 Findings by agency 分部门整改情况",
            ]
        );

        // Headline (hand calculation in example::quarterly): 2,191 + 261 = 2,452 persons; 1,008,705.50 yuan.
        let h = wb.worksheet_range("1 Headline 概况").unwrap();
        assert_eq!(text(&h, 0, 0), "Indicator 指标");
        assert_eq!(text(&h, 1, 0), "Dibao + tekun persons 低保和特困人数");
        assert_eq!(num(&h, 1, 1), 2452.0);
        assert_eq!(num(&h, 2, 1), 2191.0);
        assert_eq!(num(&h, 3, 1), 261.0);
        assert_eq!(num(&h, 5, 1), 966.0);
        assert_eq!(text(&h, 6, 0), "Monthly benefits, dibao + tekun (yuan) 月保障金合计（元）");
        assert_eq!(num(&h, 6, 1), 1_008_705.50);
        assert_eq!(num(&h, 12, 1), 1.0, "one report missing");

        // County × program: numbers as numbers, the suppressed cell as the text "<5"; the DIBAO column adds up to
        // the headline's 2,191 persons and the benefits of the four dibao/tekun cells to 1,008,705.50 yuan.
        let c = wb.worksheet_range("2 County × program 分县分项目").unwrap();
        assert_eq!(text(&c, 0, 3), "Persons 人数");
        assert_eq!(text(&c, 1, 1), "环县");
        assert_eq!(num(&c, 1, 3), 1204.0);
        assert_eq!(num(&c, 1, 4), 530.0);
        assert_eq!(num(&c, 1, 5), 451_290.00);
        assert_eq!(text(&c, 3, 2), "HIV_AFFECTED_CHILD");
        assert_eq!(text(&c, 3, 3), "<5");
        assert_eq!(text(&c, 3, 4), "<5");
        assert_eq!(num(&c, 4, 5), 372_105.50);
        assert_eq!(num(&c, 6, 3), 6.0);
        let dibao: f64 = (1..=6).filter(|&r| text(&c, r, 2) == "DIBAO").map(|r| num(&c, r, 3)).sum();
        assert_eq!(dibao, 2191.0);
        let benefits: f64 = [1, 2, 4, 5].iter().map(|&r| num(&c, r, 5)).sum();
        assert_eq!(benefits, 1_008_705.50);

        // Fund reports: 12 rows (3 months × 2 counties × 2 programs) under a caption and a header; then an empty
        // row, the totals' caption and header. 2023-04 RURAL_DIBAO: 380,000.00 + 301,500.00 = 681,500.00 yuan,
        // 1,010 + 820 = 1,830 recipients.
        let f = wb.worksheet_range("6 Fund reports 资金发放月报告").unwrap();
        assert_eq!(text(&f, 0, 0), "Reports by month, county and program 分月分县报告");
        assert_eq!(num(&f, 2, 5), 380_000.00);
        assert_eq!(text(&f, 12, 4), "MISSING");
        assert_eq!(f.get_value((12, 5)), Some(&Data::Empty), "the missing report has no amount");
        assert_eq!(num(&f, 12, 7), 301_500.00);
        assert_eq!(text(&f, 15, 0), "Totals by month and program 分月分项目合计");
        assert_eq!(text(&f, 17, 0), "2023-04");
        assert_eq!(text(&f, 17, 1), "RURAL_DIBAO");
        assert_eq!(num(&f, 17, 2), 681_500.00);
        assert_eq!(num(&f, 17, 3), 1830.0);
        assert_eq!(num(&f, 17, 4), 2.0);
        assert_eq!(num(&f, 18, 2), 185_310.00);
        assert_eq!(num(&f, 21, 2), 380_000.00);
        let amounts: f64 = (2..=13).filter_map(|r| f.get_value((r, 5)).and_then(|d| d.as_f64())).sum();
        let totals: f64 = (17..=22).map(|r| num(&f, r, 2)).sum();
        assert_eq!(amounts, totals, "the totals add up the reported amounts");

        // Medical: total cost = the three tiers + out of pocket (1,862,400.00).
        let m = wb.worksheet_range("5 Medical three tiers 医疗三重保障").unwrap();
        assert_eq!(num(&m, 5, 1), 1_862_400.00);
        assert_eq!(num(&m, 6, 1) + num(&m, 7, 1) + num(&m, 8, 1) + num(&m, 9, 1), 1_862_400.00);

        // Percentages and years are numbers too.
        let w = wb.worksheet_range("7 Early warnings 动态监测预警").unwrap();
        assert_eq!(num(&w, 8, 1), 84.0);
        let s = wb.worksheet_range("9 Standards 保障标准").unwrap();
        assert_eq!(num(&s, 1, 2), 2022.0);
        assert_eq!(num(&s, 1, 3), 680.0);
        assert_eq!(num(&s, 1, 6), 3.0);
    }

    #[test]
    fn monthly_xlsx_opens_with_its_sections() {
        let mut wb = open(render_monthly(&example::monthly(), Format::Xlsx).unwrap());
        assert_eq!(wb.sheet_names().len(), 6, "report + 5 sections (5: subsidy campaigns, issue 18)");
        // The example's one campaign row: header 0, row 1; persons (column 5) and owed (column 6) are numbers.
        let c = wb.worksheet_range("5 Subsidy campaigns 补贴发放").unwrap();
        assert_eq!(num(&c, 1, 5), 1354.0);
        assert_eq!(num(&c, 1, 6), 316_944.00);
        let f = wb.worksheet_range("2 Fund reports 资金发放月报告").unwrap();
        // Totals after 4 rows: caption 0, header 1, rows 2–5, empty 6, caption 7, header 8, first total 9.
        assert_eq!(num(&f, 9, 2), 681_500.00);
        assert_eq!(num(&f, 9, 3), 1830.0);
    }
}
