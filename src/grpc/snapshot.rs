//! Conversions for the snapshot, summary and report RPCs of `doudi.v1.Coordination`.

use std::collections::BTreeMap;

use tonic::Status;

use super::convert::timestamp;
use super::pb;
use super::status::invalid;
use crate::domain::calendar::{Month, Quarter};
use crate::store::{SnapshotHeader, Verification};

/// Parse a required `YYYYQn` (1900–2099).
pub fn quarter_in(s: &str, field: &str) -> Result<Quarter, Status> {
    if s.is_empty() {
        return Err(invalid(field, "is required (YYYYQn, e.g. 2023Q2)"));
    }
    let q: Quarter = s.parse().map_err(|e| invalid(field, format!("{e} (expected YYYYQn, e.g. 2023Q2)")))?;
    if !(1900..=2099).contains(&q.year()) {
        return Err(invalid(field, format!("{q} is outside 1900Q1 to 2099Q4")));
    }
    Ok(q)
}

/// Parse a required `YYYY-MM` (1900–2099).
pub fn month_in(s: &str, field: &str) -> Result<Month, Status> {
    if s.is_empty() {
        return Err(invalid(field, "is required (YYYY-MM)"));
    }
    let m: Month = s.parse().map_err(|e| invalid(field, format!("{e} (expected YYYY-MM)")))?;
    if !(1900..=2099).contains(&m.year()) {
        return Err(invalid(field, format!("{m} is outside 1900-01 to 2099-12")));
    }
    Ok(m)
}

pub fn snapshot_out(h: &SnapshotHeader) -> pb::Snapshot {
    pb::Snapshot {
        quarter: h.quarter.clone(),
        as_of: h.as_of.to_string(),
        knowledge_cutoff: Some(timestamp(h.knowledge_cutoff)),
        created_by: h.created_by.clone(),
        previous_quarter: h.previous_quarter.clone().unwrap_or_default(),
        previous_hash: hex::encode(h.previous_hash),
        content_hash: hex::encode(h.content_hash),
        section_hashes: h.section_hashes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

pub fn verification_out(v: &Verification) -> pb::VerifySnapshotResponse {
    pb::VerifySnapshotResponse {
        valid: v.differences.is_empty(),
        stored_content_hash: hex::encode(v.header.content_hash),
        recomputed_content_hash: hex::encode(v.recomputed_content_hash),
        differences: v.differences.clone(),
        snapshot: Some(snapshot_out(&v.header)),
    }
}

/// A JSON value as a protobuf `Value` (numbers become doubles: counts stay exact below 2^53; money is a string).
pub fn json_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => {
            Kind::ListValue(prost_types::ListValue { values: a.into_iter().map(json_value).collect() })
        }
        serde_json::Value::Object(o) => Kind::StructValue(json_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

pub fn json_struct(o: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct { fields: o.into_iter().map(|(k, v)| (k, json_value(v))).collect::<BTreeMap<_, _>>() }
}

/// Any serializable value (an object) as a `Struct`.
pub fn to_struct<T: serde::Serialize>(v: &T) -> Result<prost_types::Struct, Status> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(o)) => Ok(json_struct(o)),
        _ => Err(super::status::internal("summary is not an object")),
    }
}

/// A protobuf `Struct` back to JSON, the inverse of [`to_struct`] (whole numbers below 2^53 become integers), for
/// clients reading `GetQuarterlySummary` / `GetMonthlyReport` into the `domain::summary` types.
pub fn struct_to_json(s: prost_types::Struct) -> serde_json::Value {
    fn value(v: prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match v.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => b.into(),
            Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => (n as i64).into(),
            Some(Kind::NumberValue(n)) => n.into(),
            Some(Kind::StringValue(s)) => s.into(),
            Some(Kind::ListValue(l)) => l.values.into_iter().map(value).collect::<Vec<_>>().into(),
            Some(Kind::StructValue(s)) => struct_to_json(s),
        }
    }
    serde_json::Value::Object(s.fields.into_iter().map(|(k, v)| (k, value(v))).collect())
}
