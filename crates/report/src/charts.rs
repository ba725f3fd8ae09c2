//! The HTML report's charts, drawn as SVG strings by `plotters` with only its `svg_backend` feature.
//!
//! Without a font feature (`ttf`, `ab_glyph`), plotters sizes text with a crude built-in estimate and the SVG
//! backend writes every label as an SVG `<text>` element (with `text-anchor`), so nothing reads a system font at
//! render time and the browser draws the glyphs (Chinese included) with its own fonts. The page's CSS sets the
//! font family of `svg text`.
//!
//! Every chart is wrapped by the HTML renderer in a `<figure>` with a `<figcaption>`; the `<svg>` carries
//! `role="img"` and an `aria-label` that states the plotted values, so a screen reader gets the figures too.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::html::escape;
use super::table::{group_thousands, yuan};
use doudi_domain::money::Money;
use doudi_domain::summary::{Count, CountyProgramRow, MedicalSection, MonthlyReport, QuarterlySummary};

/// One chart for the HTML report.
pub(crate) struct Chart {
    /// The id of the section it illustrates (`table::Section::id`).
    pub section: &'static str,
    /// The figure caption (plain text).
    pub caption: String,
    /// `<svg role="img" aria-label="…" …>…</svg>`.
    pub svg: String,
}

/// The programs of the county chart (docs/spec/coordination.md: "county × program bars"): the two roster programs.
const CHART_PROGRAMS: [&str; 2] = ["DIBAO", "TEKUN"];

const WIDTH: u32 = 760;
const HEIGHT: u32 = 380;
const FONT: &str = "sans-serif";
/// Width of one group of bars on the integer x axis of [`grouped_bars`].
const SCALE: i32 = 1000;

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const VERMILION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

/// One bar series: a name for the legend, a colour and one value per group (`None`: no bar, no label).
struct Series {
    name: String,
    color: RGBColor,
    values: Vec<Option<Count>>,
}

/// Puts `role="img"` and `aria-label` on the root `<svg>`.
fn accessible(svg: String, label: &str) -> String {
    svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(label)), 1)
}

fn count_text(c: Count) -> String {
    match c {
        Count::Value(v) => group_thousands(&v.to_string()),
        Count::Suppressed => super::table::SUPPRESSED.to_owned(),
    }
}

/// Vertical grouped bars: one group per entry of `groups`, one bar per series in each, the value above each bar
/// (`<5` for a suppressed count, which has no bar). The y axis is persons.
fn grouped_bars(groups: &[String], series: &[Series], y_desc: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = series.iter().flat_map(|s| &s.values).filter_map(|v| v.and_then(Count::value)).max().unwrap_or(0);
        // Head room for the value labels and the legend in the upper right.
        let top = max + max * 2 / 5 + 1;
        let n = groups.len().max(1) as i32;
        // Each group is SCALE units wide on an integer axis (plotters formats labels of integer axes with key points;
        // it has no formatter for f64 axes with key points); the labels sit at the groups' centres.
        let centers: Vec<i32> = (0..n).map(|i| i * SCALE + SCALE / 2).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(34)
            .y_label_area_size(72)
            .build_cartesian_2d((0..n * SCALE).with_key_points(centers), 0u64..top)?;
        let label_of =
            |x: &i32| usize::try_from(x / SCALE).ok().and_then(|i| groups.get(i)).cloned().unwrap_or_default();
        let thousands = |y: &u64| group_thousands(&y.to_string());
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n as usize)
            .x_label_formatter(&label_of)
            .y_label_formatter(&thousands)
            .y_desc(y_desc)
            .label_style((FONT, 14).into_font().color(&INK))
            .axis_desc_style((FONT, 14).into_font().color(&INK))
            .max_light_lines(1)
            .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
            .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
            .draw()?;
        // 80% of a group is bars, split evenly between the series; 10% of a bar's slot is the gap beside it.
        let slot = SCALE * 8 / 10 / series.len().max(1) as i32;
        let value_style = (FONT, 13).into_font().color(&INK).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (j, s) in series.iter().enumerate() {
            let color = s.color;
            let left = move |i: usize| i as i32 * SCALE + SCALE / 10 + slot * j as i32;
            chart
                .draw_series(s.values.iter().enumerate().filter_map(|(i, v)| match v {
                    Some(Count::Value(v)) => {
                        Some(Rectangle::new([(left(i), 0), (left(i) + slot * 9 / 10, *v)], color.filled()))
                    }
                    _ => None,
                }))?
                .label(s.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
            chart.draw_series(s.values.iter().enumerate().filter_map(|(i, v)| {
                let v = (*v)?;
                let at = (left(i) + slot * 9 / 20, v.value().unwrap_or(0));
                Some(EmptyElement::at(at) + Text::new(count_text(v), (0, -3), value_style.clone()))
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 14).into_font().color(&INK))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(0xBB, 0xBB, 0xBB))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Figure 1: persons of DIBAO and TEKUN per county (bars grouped by county, counties in code order).
fn county_program(rows: &[CountyProgramRow], as_of: &str) -> anyhow::Result<Chart> {
    let counties: BTreeMap<&str, &str> =
        rows.iter().map(|r| (r.county_code.as_str(), r.county_name.as_str())).collect();
    let value = |county: &str, program: &str| {
        rows.iter().find(|r| r.county_code == county && r.program == program).map(|r| r.persons)
    };
    let series: Vec<Series> = CHART_PROGRAMS
        .iter()
        .zip([BLUE, ORANGE])
        .map(|(program, color)| Series {
            name: (*program).to_owned(),
            color,
            values: counties.keys().map(|c| value(c, program)).collect(),
        })
        .collect();
    let groups: Vec<String> = counties.values().map(|n| (*n).to_owned()).collect();
    let mut label = format!("Bar chart: persons of DIBAO and TEKUN by county on {as_of}.");
    for (i, (code, name)) in counties.iter().enumerate() {
        label.push_str(&format!(" {name} ({code}):"));
        for s in &series {
            let shown = s.values[i].map_or_else(|| "none".to_owned(), count_text);
            label.push_str(&format!(" {} {shown};", s.name));
        }
    }
    let svg = grouped_bars(&groups, &series, "Persons 人数")?;
    Ok(Chart {
        section: "by_county_program",
        caption: format!("Figure 1. Persons of DIBAO and TEKUN by county on {as_of} 图1 分县低保、特困人数"),
        svg: accessible(svg, label.trim_end_matches(';')),
    })
}

/// Figure 2: persons per program at the previous snapshot and at this one (section 3, `change`).
fn trend(s: &QuarterlySummary) -> anyhow::Result<Chart> {
    let previous_name = s.previous_quarter.clone().unwrap_or_else(|| "Previous quarter".to_owned());
    let groups: Vec<String> = s.change.iter().map(|c| c.program.clone()).collect();
    let series = [
        Series { name: previous_name.clone(), color: SKY, values: s.change.iter().map(|c| c.previous).collect() },
        Series { name: s.quarter.clone(), color: BLUE, values: s.change.iter().map(|c| Some(c.current)).collect() },
    ];
    let mut label = format!("Bar chart: persons by program, {previous_name} against {}.", s.quarter);
    for c in &s.change {
        let previous = c.previous.map_or_else(|| "none".to_owned(), count_text);
        label.push_str(&format!(" {} {previous} to {};", c.program, count_text(c.current)));
    }
    let svg = grouped_bars(&groups, &series, "Persons 人数")?;
    let caption = match &s.previous_quarter {
        Some(p) => format!("Figure 2. Persons by program, {p} and {} 图2 分项目人数季度对比", s.quarter),
        None => format!("Figure 2. Persons by program, {} (no previous snapshot) 图2 分项目人数", s.quarter),
    };
    Ok(Chart { section: "change", caption, svg: accessible(svg, label.trim_end_matches(';')) })
}

/// `part / whole` in percent as a float, for drawing only (0 when `whole` is 0).
fn share(part: Money, whole: Money) -> f64 {
    if whole.is_zero() { 0.0 } else { part.to_fen() as f64 * 100.0 / whole.to_fen() as f64 }
}

/// Figure 3: basic insurance, critical illness insurance, medical assistance and out of pocket as shares of the
/// total cost (horizontal bars, 0–100%).
fn tiers(m: &MedicalSection) -> anyhow::Result<Chart> {
    let parts = [
        ("Basic insurance 基本医保", "Basic insurance", m.paid.basic, BLUE),
        ("Critical illness 大病保险", "Critical illness insurance", m.paid.critical_illness, SKY),
        ("Medical assistance 医疗救助", "Medical assistance", m.paid.medical_assistance, GREEN),
        ("Out of pocket 个人自付", "Out of pocket", m.out_of_pocket, VERMILION),
    ];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE)?;
        if m.total_cost.is_zero() {
            let style = (FONT, 16).into_font().color(&INK).pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text("No settlements 无结算", &style, (WIDTH as i32 / 2, 150))?;
        } else {
            let n = parts.len() as i32;
            let centers: Vec<i32> = (0..n).map(|i| i * SCALE + SCALE / 2).collect();
            let mut chart = ChartBuilder::on(&root)
                .margin(14)
                .margin_right(150)
                .x_label_area_size(40)
                .y_label_area_size(190)
                .build_cartesian_2d(0.0..100.0, (0..n * SCALE).with_key_points(centers))?;
            // The first part on top: part i occupies the band of row n − 1 − i.
            let row = |i: usize| (n - 1 - i as i32) * SCALE;
            let label_of = |y: &i32| {
                usize::try_from(n - 1 - y / SCALE).ok().and_then(|i| parts.get(i)).map_or("", |p| p.0).to_owned()
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n as usize)
                .y_label_formatter(&label_of)
                .x_label_formatter(&|x: &f64| format!("{x:.0}%"))
                .x_desc("Share of total cost 占总费用比例")
                .label_style((FONT, 14).into_font().color(&INK))
                .axis_desc_style((FONT, 14).into_font().color(&INK))
                .max_light_lines(1)
                .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
                .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
                .draw()?;
            chart.draw_series(parts.iter().enumerate().map(|(i, (_, _, amount, color))| {
                let bar = [(0.0, row(i) + SCALE / 5), (share(*amount, m.total_cost), row(i) + SCALE * 4 / 5)];
                Rectangle::new(bar, color.filled())
            }))?;
            let value_style = (FONT, 13).into_font().color(&INK).pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series(parts.iter().enumerate().map(|(i, (_, _, amount, _))| {
                let text = format!("{:.1}% · {}", share(*amount, m.total_cost), yuan(*amount));
                EmptyElement::at((share(*amount, m.total_cost), row(i) + SCALE / 2))
                    + Text::new(text, (6, 0), value_style.clone())
            }))?;
        }
        root.present()?;
    }
    let mut label = format!("Bar chart: shares of the total medical cost of {} yuan.", yuan(m.total_cost));
    for (_, en, amount, _) in &parts {
        label.push_str(&format!(" {en} {:.1}% ({} yuan);", share(*amount, m.total_cost), yuan(*amount)));
    }
    Ok(Chart {
        section: "medical",
        caption: format!(
            "Figure 3. Costs by tier as shares of the total cost of {} yuan 图3 医疗费用三重保障分担结构",
            yuan(m.total_cost)
        ),
        svg: accessible(svg, label.trim_end_matches(';')),
    })
}

/// The quarterly summary's three charts: county × program bars, the quarter-over-quarter trend, the tier shares.
pub(crate) fn quarterly(s: &QuarterlySummary) -> anyhow::Result<Vec<Chart>> {
    Ok(vec![county_program(&s.by_county_program, &s.as_of.to_string())?, trend(s)?, tiers(&s.medical)?])
}

/// The monthly report's chart: county × program bars.
pub(crate) fn monthly(m: &MonthlyReport) -> anyhow::Result<Vec<Chart>> {
    Ok(vec![county_program(&m.by_county_program, &m.as_of.to_string())?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example;

    /// Whether `svg` has a `<text>` element reading exactly `t` (plotters writes the text on its own line).
    fn has_text(svg: &str, t: &str) -> bool {
        svg.contains(&format!(">\n{t}\n</text>"))
    }

    #[test]
    fn the_tier_shares_are_the_hand_calculated_percentages() {
        // example::quarterly: 1,024,320 / 1,862,400 = 55%, 186,240 = 10%, 372,480 = 20%, 279,360 = 15%.
        let c = tiers(&example::quarterly().medical).unwrap();
        assert!(c.svg.starts_with("<svg role=\"img\" aria-label=\"Bar chart: shares of the total medical cost of"));
        for text in [
            "55.0% · 1,024,320.00",
            "10.0% · 186,240.00",
            "20.0% · 372,480.00",
            "15.0% · 279,360.00",
            "Basic insurance 基本医保",
            "Out of pocket 个人自付",
        ] {
            assert!(has_text(&c.svg, text), "missing {text}");
        }
        assert!(c.svg.contains("Basic insurance 55.0% (1,024,320.00 yuan); Critical illness insurance 10.0%"));
    }

    #[test]
    fn the_county_chart_draws_dibao_and_tekun_per_county() {
        let c = county_program(&example::quarterly().by_county_program, "2023-06-30").unwrap();
        let label = "Bar chart: persons of DIBAO and TEKUN by county on 2023-06-30. 环县 (621022): DIBAO 1,204; \
                     TEKUN 143; 镇原县 (621027): DIBAO 987; TEKUN 118\"";
        assert!(c.svg.contains(label), "{}", &c.svg[..400]);
        // Four bars (2 counties × 2 programs) and 2 legend swatches, on a white background.
        let filled_rects = c.svg.matches("<rect").count();
        assert!(filled_rects >= 6, "{filled_rects} rects");
        for text in ["1,204", "987", "143", "118", "环县", "镇原县", "DIBAO", "TEKUN", "Persons 人数"] {
            assert!(has_text(&c.svg, text), "missing {text}");
        }
    }

    #[test]
    fn the_trend_chart_compares_the_two_quarters() {
        let c = trend(&example::quarterly()).unwrap();
        assert!(c.svg.contains("DIBAO 2,150 to 2,191; TEKUN 255 to 261; HIV_AFFECTED_CHILD 8 to 9\""));
        for text in ["2023Q1", "2023Q2", "2,150", "2,191", "HIV_AFFECTED_CHILD", "8", "9"] {
            assert!(has_text(&c.svg, text), "missing {text}");
        }
        assert_eq!(c.caption, "Figure 2. Persons by program, 2023Q1 and 2023Q2 图2 分项目人数季度对比");
    }

    #[test]
    fn no_settlements_draws_a_note_instead_of_bars() {
        let mut m = example::quarterly().medical;
        m.total_cost = Money::ZERO;
        let c = tiers(&m).unwrap();
        assert!(has_text(&c.svg, "No settlements 无结算"));
    }
}
