//! Rendering facts for `doudi get` and `doudi list`: a human table (comfy-table) or JSON in the file format's
//! flat form (docs/file-exchange.md) plus the output-only fields.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::format::{all_columns, fact_json, fact_row};
use crate::grpc::pb;

/// One fact as JSON: the columns of its kind's file, plus `agency`, `recorded_at` and `omitted_fields`.
pub fn fact_to_json(f: &pb::Fact) -> serde_json::Value {
    let mut m = fact_json(f).unwrap_or_default();
    m.insert("agency".into(), f.agency.clone().into());
    if let Some(t) = &f.recorded_at
        && let Some(dt) = chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
    {
        m.insert("recorded_at".into(), dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into());
    }
    if !f.omitted_fields.is_empty() {
        m.insert("omitted_fields".into(), f.omitted_fields.clone().into());
    }
    serde_json::Value::Object(m)
}

pub fn recipient_to_json(r: &pb::Recipient) -> serde_json::Value {
    serde_json::json!({
        "id_number": r.id_number,
        "as_of": r.as_of,
        "facts": r.facts.iter().map(fact_to_json).collect::<Vec<_>>(),
    })
}

/// The payload fields of a fact as `name=value` lines (empty ones left out).
fn fields_text(f: &pb::Fact) -> String {
    let Some((kind, row)) = fact_row(f) else { return String::new() };
    let mut lines: Vec<String> = all_columns(kind)
        .into_iter()
        .zip(row)
        .skip(7)
        .filter(|(_, v)| !v.is_empty())
        .map(|(c, v)| format!("{c}={v}"))
        .collect();
    if !f.omitted_fields.is_empty() {
        lines.push(format!("(not shown to you: {})", f.omitted_fields.join(", ")));
    }
    lines.join("\n")
}

fn kind_of(f: &pb::Fact) -> &'static str {
    f.payload.as_ref().map(|p| super::format::payload_kind(p).as_str()).unwrap_or("?")
}

fn period(f: &pb::Fact) -> String {
    format!("{} – {}", f.valid_from, if f.valid_to.is_empty() { "" } else { &f.valid_to })
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled).set_header(header.to_vec());
    t
}

/// One person's facts.
pub fn recipient_table(r: &pb::Recipient) -> String {
    let mut t = table(&["kind", "fact_id", "version", "in force", "division", "agency", "fields"]);
    for f in &r.facts {
        t.add_row(vec![
            kind_of(f).to_owned(),
            f.fact_id.clone(),
            f.source_version.to_string(),
            period(f),
            f.division_code.clone(),
            f.agency.clone(),
            fields_text(f),
        ]);
    }
    t.to_string()
}

/// Persons and their facts, one line per fact.
pub fn recipients_table(rs: &[pb::Recipient]) -> String {
    let mut t = table(&["id_number", "kind", "fact_id", "in force", "division", "agency", "fields"]);
    for r in rs {
        for f in &r.facts {
            t.add_row(vec![
                r.id_number.clone(),
                kind_of(f).to_owned(),
                f.fact_id.clone(),
                period(f),
                f.division_code.clone(),
                f.agency.clone(),
                fields_text(f).replace('\n', " "),
            ]);
        }
    }
    t.to_string()
}
