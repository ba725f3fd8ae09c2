//! Conversions for the snapshot, countersignature, summary and report RPCs of `doudi.v1.Coordination`.

use std::collections::BTreeMap;

use tonic::Status;

use super::convert::timestamp;
use super::pb;
use super::status::invalid;
use crate::domain::calendar::{Month, Quarter};
use crate::domain::countersign::SignatureStatus;
use crate::hub::countersign::{AgencySignature, SignInput};
use crate::hub::{SnapshotHeader, Verification};
use crate::security::countersign::Countersignature;

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

pub fn verification_out(v: &Verification, signatures: &[AgencySignature]) -> pb::VerifySnapshotResponse {
    pb::VerifySnapshotResponse {
        valid: v.differences.is_empty(),
        stored_content_hash: hex::encode(v.header.content_hash),
        recomputed_content_hash: hex::encode(v.recomputed_content_hash),
        differences: v.differences.clone(),
        snapshot: Some(snapshot_out(&v.header)),
        signatures: signatures.iter().map(|s| signature_out(&v.header.quarter, s)).collect(),
    }
}

/// Earliest and latest `signed_at` accepted on the wire (1970-01-01, 2100-01-01): the hub's own checks narrow it.
const SIGNED_AT_SECONDS: std::ops::Range<i64> = 0..4_102_444_800;

/// A `SignSnapshotRequest`, decoded. Errors: INVALID_ARGUMENT naming `quarter`, `content_hash` (not 64 hex) or
/// `signed_at` (missing, not whole microseconds, outside 1970–2099); the signature and certificate bytes are checked
/// by the hub.
pub fn sign_in(r: pb::SignSnapshotRequest) -> Result<SignInput, Status> {
    let quarter = quarter_in(&r.quarter, "quarter")?;
    if r.content_hash.is_empty() {
        return Err(invalid("content_hash", "is required (64 hex characters: the snapshot's content_hash)"));
    }
    let content_hash = crate::security::countersign::hex32(&r.content_hash)
        .ok_or_else(|| invalid("content_hash", format!("{:?} is not 64 hex characters", r.content_hash)))?;
    let t = r.signed_at.ok_or_else(|| invalid("signed_at", "is required (the signing time as signed)"))?;
    if !(0..1_000_000_000).contains(&t.nanos) || t.nanos % 1_000 != 0 {
        return Err(invalid(
            "signed_at",
            "must be whole microseconds (the message signs microseconds since the epoch)",
        ));
    }
    if !SIGNED_AT_SECONDS.contains(&t.seconds) {
        return Err(invalid("signed_at", "is outside 1970 to 2099"));
    }
    Ok(SignInput {
        quarter,
        content_hash,
        signed_at_micros: t.seconds * 1_000_000 + i64::from(t.nanos / 1_000),
        signature: r.signature,
        signer_cert_der: r.signer_certificate,
    })
}

/// One agency's countersignature on the wire (for MISSING only quarter, agency and status).
pub fn signature_out(quarter: &str, s: &AgencySignature) -> pb::SnapshotSignature {
    let status = match s.status {
        SignatureStatus::Valid => pb::SignatureStatus::Valid,
        SignatureStatus::Missing => pb::SignatureStatus::Missing,
        SignatureStatus::Invalid(_) => pb::SignatureStatus::Invalid,
    };
    let mut out = pb::SnapshotSignature {
        quarter: quarter.to_owned(),
        agency: s.agency.clone(),
        status: status as i32,
        problem: match &s.status {
            SignatureStatus::Invalid(why) => why.clone(),
            _ => String::new(),
        },
        ..Default::default()
    };
    if let Some(k) = &s.stored {
        out.content_hash = hex::encode(k.signature.content_hash);
        out.signed_at = Some(super::convert::timestamp_micros(k.signature.signed_at_micros));
        out.signature = k.signature.signature.clone();
        out.signer_certificate = k.signature.signer_cert_der.clone();
        out.version = k.version;
        out.recorded_at = Some(timestamp(k.recorded_at));
    }
    out
}

/// A signature as the wire gives it back, for clients (the export, `doudi snapshot verify --offline`): the status the
/// hub reported and, unless missing, the signature.
pub fn signature_in(s: &pb::SnapshotSignature) -> Result<(String, Option<(Countersignature, i64)>), String> {
    let status = match pb::SignatureStatus::try_from(s.status) {
        Ok(pb::SignatureStatus::Valid) => "VALID",
        Ok(pb::SignatureStatus::Missing) => "MISSING",
        Ok(pb::SignatureStatus::Invalid) => "INVALID",
        _ => return Err(format!("agency {}: unknown status {}", s.agency, s.status)),
    };
    if s.signature.is_empty() {
        return Ok((status.to_owned(), None));
    }
    let hash = crate::security::countersign::hex32(&s.content_hash)
        .ok_or_else(|| format!("agency {}: content_hash {:?} is not a hash", s.agency, s.content_hash))?;
    let at = s.signed_at.as_ref().ok_or_else(|| format!("agency {}: no signed_at", s.agency))?;
    let micros = at
        .seconds
        .checked_mul(1_000_000)
        .and_then(|m| m.checked_add(i64::from(at.nanos / 1_000)))
        .ok_or_else(|| format!("agency {}: signed_at out of range", s.agency))?;
    Ok((
        status.to_owned(),
        Some((
            Countersignature {
                quarter: s.quarter.clone(),
                agency: s.agency.clone(),
                content_hash: hash,
                signed_at_micros: micros,
                signature: s.signature.clone(),
                signer_cert_der: s.signer_certificate.clone(),
            },
            s.version,
        )),
    ))
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
