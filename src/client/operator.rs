//! The hub path of the operator commands that change the hub (`doudi policy add`, `calendar add`, `retention …`,
//! `certs revoke/refresh-crl`, `keys request-rotation`): each is one `doudi.v1.Admin` call with the operator's
//! certificate ([`super::admin::OperatorArgs`]), printed as the direct path prints it. The direct path is in
//! [`crate::ops`], behind `--direct-database`.

use std::path::Path;

use anyhow::Context as _;

use super::admin::{OperatorArgs, failed};
use crate::grpc::pb;

/// `doudi policy add FILE --source S [--example] --operator NAME`.
pub async fn policy_add(hub: &OperatorArgs, file: &Path, source: &str, example: bool) -> anyhow::Result<()> {
    let params_json = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let r = hub
        .connect()
        .await?
        .add_policy_version(pb::AddPolicyVersionRequest { params_json, source: source.to_owned(), example })
        .await
        .map_err(|s| failed("AddPolicyVersion", s))?
        .into_inner();
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    println!("added {} for pooling area {} from {} (audited)", r.version, r.pooling_area, r.effective_from);
    Ok(())
}

/// `doudi policy show [--json] --operator NAME`.
pub async fn policy_show(hub: &OperatorArgs, json: bool) -> anyhow::Result<()> {
    let r = hub
        .connect()
        .await?
        .list_policy_versions(pb::ListPolicyVersionsRequest {})
        .await
        .map_err(|s| failed("ListPolicyVersions", s))?
        .into_inner();
    for v in r.versions {
        if json {
            println!("{}", v.params_json);
        } else {
            let p: crate::domain::medical::PolicyParams = serde_json::from_str(&v.params_json)?;
            println!(
                "{}  area {}  from {}  {}source: {}",
                p.version,
                p.pooling_area,
                p.effective_from,
                if v.example { "EXAMPLE VALUES  " } else { "" },
                v.source
            );
        }
    }
    Ok(())
}

/// `doudi calendar add FILE --source S [--correction WHY] --operator NAME`.
pub async fn calendar_add(
    hub: &OperatorArgs,
    file: &Path,
    source: &str,
    correction: Option<&str>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let format = match crate::domain::holiday_notice::FileFormat::detect(file, &text) {
        crate::domain::holiday_notice::FileFormat::Json => "json",
        crate::domain::holiday_notice::FileFormat::Toml => "toml",
    };
    let r = hub
        .connect()
        .await?
        .add_calendar_notice(pb::AddCalendarNoticeRequest {
            notice: text,
            format: format.to_owned(),
            source: source.to_owned(),
            correction: correction.unwrap_or_default().to_owned(),
        })
        .await
        .map_err(|s| failed(&format!("{}: not loaded", file.display()), s))?
        .into_inner();
    if r.changed {
        println!(
            "calendar {} loaded as version {}: {} days off, {} make-up working days (source: {source}); deadlines \
             moved for {} warnings (audited)",
            r.year, r.version, r.holidays, r.make_up_workdays, r.deadlines_moved
        );
    } else {
        println!("calendar {}: version {} already holds exactly this notice; nothing changed", r.year, r.version);
    }
    Ok(())
}

/// `doudi retention show --operator NAME`.
pub async fn retention_show(hub: &OperatorArgs) -> anyhow::Result<()> {
    let r = hub
        .connect()
        .await?
        .get_retention_settings(pb::GetRetentionSettingsRequest {})
        .await
        .map_err(|s| failed("GetRetentionSettings", s))?
        .into_inner();
    println!("{:<15}{:>7}{:>10}  {:<50}source", "kind", "days", "min", "set by");
    for p in &r.periods {
        println!("{:<15}{:>7}{:>10}  {:<50}{}", p.kind, p.days, p.min_days, p.set_by, p.source);
    }
    let in_force = r.holds.iter().filter(|h| h.release_time.is_none()).count();
    println!("legal holds: {in_force} in force, {} released", r.holds.len() - in_force);
    for h in &r.holds {
        let state = if h.release_time.is_none() {
            "IN FORCE".to_owned()
        } else {
            format!("released by {}: {}", h.released_by, h.release_reason)
        };
        println!("  hold {}: {}; placed by {}: {}; {state}", h.id, h.target, h.placed_by, h.reason);
    }
    Ok(())
}

/// `doudi retention set KIND DAYS --source S --operator NAME`.
pub async fn retention_set(hub: &OperatorArgs, kind: &str, days: i64, source: &str) -> anyhow::Result<()> {
    let r = hub
        .connect()
        .await?
        .set_retention_period(pb::SetRetentionPeriodRequest { kind: kind.to_owned(), days, source: source.to_owned() })
        .await
        .map_err(|s| failed("SetRetentionPeriod", s))?
        .into_inner();
    println!("retention of {kind}: {} days -> {} days (source: {source}); audited", r.days_before, r.days_after);
    Ok(())
}

/// `doudi retention hold (--person ID | --quarter Q) --reason R --operator NAME`.
pub async fn retention_hold(
    hub: &OperatorArgs,
    person: Option<&str>,
    quarter: Option<&str>,
    reason: &str,
) -> anyhow::Result<()> {
    let r = hub
        .connect()
        .await?
        .place_legal_hold(pb::PlaceLegalHoldRequest {
            id_number: person.unwrap_or_default().to_owned(),
            quarter: quarter.unwrap_or_default().to_owned(),
            reason: reason.to_owned(),
        })
        .await
        .map_err(|s| failed("PlaceLegalHold", s))?
        .into_inner();
    println!("hold {} placed: its records are not purged until it is released; audited", r.hold_id);
    Ok(())
}

/// `doudi retention release ID --reason R --operator NAME`.
pub async fn retention_release(hub: &OperatorArgs, id: i64, reason: &str) -> anyhow::Result<()> {
    hub.connect()
        .await?
        .release_legal_hold(pb::ReleaseLegalHoldRequest { hold_id: id, reason: reason.to_owned() })
        .await
        .map_err(|s| failed("ReleaseLegalHold", s))?;
    println!("hold {id} released (kept on record); audited");
    Ok(())
}

/// `doudi retention purge [--dry-run] --operator NAME`.
pub async fn retention_purge(
    hub: &OperatorArgs,
    dry_run: bool,
    chunk: usize,
    max_chunks: Option<usize>,
) -> anyhow::Result<()> {
    let r = hub
        .connect()
        .await?
        .purge_expired_records(pb::PurgeExpiredRecordsRequest {
            dry_run,
            chunk_size: i32::try_from(chunk).context("--chunk is too large")?,
            max_chunks: i32::try_from(max_chunks.unwrap_or(0)).context("--max-chunks is too large")?,
        })
        .await
        .map_err(|s| failed("PurgeExpiredRecords", s))?
        .into_inner();
    for c in &r.counts {
        println!(
            "{:<15}{} {:>9}  ({} days; {} chunks)",
            c.kind,
            if dry_run { "due" } else { "purged" },
            c.purged,
            c.days,
            c.chunks
        );
    }
    if r.interrupted {
        println!("stopped before the end: run the same command again to finish (nothing is purged twice)");
    }
    Ok(())
}

/// `doudi certs revoke NAME --dir DIR --operator OP`: the certificate file is read here and sent to the hub, which
/// revokes it with the CA key in its own certs_dir and reloads its CRL.
pub async fn certs_revoke(hub: &OperatorArgs, cert_file: &Path) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(cert_file).with_context(|| format!("reading {}", cert_file.display()))?;
    let r = hub
        .connect()
        .await?
        .revoke_certificate(pb::RevokeCertificateRequest { certificate_pem: pem })
        .await
        .map_err(|s| failed("RevokeCertificate", s))?
        .into_inner();
    println!(
        "{} (serial {}) {}; the hub's CRL lists {} serials and is in force now (audited)",
        cert_file.display(),
        r.serial,
        if r.newly_revoked { "revoked" } else { "was revoked already" },
        r.revoked_count
    );
    Ok(())
}

/// `doudi certs refresh-crl --operator OP`.
pub async fn certs_refresh_crl(hub: &OperatorArgs) -> anyhow::Result<()> {
    let r = hub
        .connect()
        .await?
        .refresh_crl(pb::RefreshCrlRequest {})
        .await
        .map_err(|s| failed("RefreshCrl", s))?
        .into_inner();
    println!("the hub's CRL rewritten: {} revoked serials, in force now (audited)", r.revoked_count);
    Ok(())
}

/// `doudi keys request-rotation --reason R --operator NAME`: the check value of DOUDI_NEW_DATA_KEY (`new_key`) under
/// `suite` is sent, never the key.
pub async fn keys_request_rotation(
    hub: &OperatorArgs,
    new_key: &str,
    suite: crate::security::crypto::CryptoSuite,
    reason: &str,
) -> anyhow::Result<()> {
    let keys = crate::security::crypto::Keys::from_base64_with(new_key, suite).context("DOUDI_NEW_DATA_KEY")?;
    let r = hub
        .connect()
        .await?
        .request_change(pb::RequestChangeRequest {
            kind: pb::ChangeKind::DataKeyRotation as i32,
            access_matrix_toml: String::new(),
            new_key_check: hex::encode(keys.check_value()),
            reason: reason.to_owned(),
        })
        .await
        .map_err(|s| failed("RequestChange", s))?
        .into_inner();
    let c = r.change.context("the hub answered no change")?;
    println!(
        "rotation requested as change {} (content {}); a second security administrator approves it with `doudi admin \
         approve {}`; then stop the hub and run `doudi keys rotate`",
        c.id, c.content_hash, c.id
    );
    Ok(())
}
