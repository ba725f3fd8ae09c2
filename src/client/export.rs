//! `doudi export --out DIR`: the agency's own facts in force on a date, one file per payload kind in the format
//! `doudi push` reads, and `manifest.json` (docs/file-exchange.md). The facts are read by paging through
//! ListRecipients (the hub's only bulk read path; every page is audited like any list).
//!
//! `--snapshot QUARTER` writes a frozen quarter's summary instead (aggregates, GetQuarterlySummary) in the report
//! formats of `crates/report/src/`, with the snapshot's hashes in the manifest, its header (`snapshot-QUARTER.json`) and
//! its countersignatures (`signatures-QUARTER.json`, ListSnapshotSignatures) for `doudi snapshot verify --offline`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use super::ConnectArgs;
use super::format::{FileFormat, parse_kind, payload_kind, write_facts};
use super::manifest::{MANIFEST, Manifest, ManifestFile, SnapshotInfo, sha256_hex};
use crate::domain::fact::PayloadKind;
use crate::grpc::pb;

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output directory (created if missing; files of the same names are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Only persons in this GB/T 2260 prefix.
    #[arg(long)]
    pub division: Option<String>,
    /// Business date, YYYY-MM-DD [default: today in Asia/Shanghai].
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: FileFormat,
    /// Why you export (written to the hub's audit log).
    #[arg(long, default_value = "doudi export")]
    pub purpose: String,
    /// Persons per ListRecipients page.
    #[arg(long, default_value_t = 1_000, hide = true)]
    pub page_size: i32,
    /// Instead of facts: a frozen quarter's summary (YYYYQn, GetQuarterlySummary; aggregates only), written as
    /// summary-QUARTER.{json,csv,md,html,xlsx} with the snapshot's hashes in the manifest.
    #[arg(long, conflicts_with_all = ["division", "as_of"])]
    pub snapshot: Option<String>,
}

/// Write the files and the manifest; returns the manifest.
pub async fn export(args: &ExportArgs) -> anyhow::Result<Manifest> {
    if let Some(q) = &args.snapshot {
        return export_snapshot(args, q).await;
    }
    let mut c = args.connect.connect().await?;
    let me = c
        .audit
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("WhoAmI: {}", super::status_text(&s)))?
        .into_inner();
    let kinds: Vec<PayloadKind> =
        me.push_kinds.iter().map(|k| parse_kind(k)).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!(e))?;
    if kinds.is_empty() {
        anyhow::bail!("{} pushes no kind of fact, so it has none of its own to export", me.agency);
    }
    let as_of = match &args.as_of {
        Some(d) => d.clone(),
        None => crate::domain::calendar::shanghai_date(chrono::Utc::now()).to_string(),
    };
    let mut by_kind: BTreeMap<PayloadKind, Vec<pb::Fact>> = kinds.iter().map(|k| (*k, Vec::new())).collect();
    let mut token = String::new();
    loop {
        let page = c
            .exchange
            .list_recipients(pb::ListRecipientsRequest {
                division_code: args.division.clone().unwrap_or_default(),
                program: 0,
                as_of: as_of.clone(),
                page_size: args.page_size,
                page_token: token,
                purpose: args.purpose.clone(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("ListRecipients: {}", super::status_text(&s)))?
            .into_inner();
        for r in page.recipients {
            for f in r.facts {
                if f.agency != me.agency {
                    continue;
                }
                if let Some(v) = f.payload.as_ref().and_then(|p| by_kind.get_mut(&payload_kind(p))) {
                    v.push(f);
                }
            }
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut files = Vec::new();
    for (kind, facts) in &by_kind {
        let name = format!("{}.{}", kind.as_str(), args.format.extension());
        let mut bytes = Vec::new();
        write_facts(&mut bytes, args.format, *kind, facts)?;
        let path = args.out.join(&name);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(ManifestFile {
            name,
            kind: kind.as_str().to_owned(),
            rows: Some(facts.len() as u64),
            sha256: sha256_hex(&bytes),
        });
    }
    let manifest = Manifest {
        format_version: 1,
        hub: args.connect.server.clone(),
        agency: me.agency,
        as_of,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        division_code: args.division.clone().unwrap_or_default(),
        format: Some(args.format),
        encoding: "utf-8".into(),
        files,
        snapshot: None,
    };
    let path = args.out.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(manifest)
}

/// The quarterly summary of a frozen quarter, in every report format, and its manifest.
async fn export_snapshot(args: &ExportArgs, quarter: &str) -> anyhow::Result<Manifest> {
    let q: crate::domain::calendar::Quarter =
        quarter.parse().map_err(|e| anyhow::anyhow!("--snapshot {quarter:?}: {e} (expected YYYYQn)"))?;
    let quarter = q.to_string();
    let mut c = args.connect.connect().await?;
    let me = c
        .audit
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("WhoAmI: {}", super::status_text(&s)))?
        .into_inner();
    let header = c
        .coordination
        .get_snapshot(pb::GetSnapshotRequest { quarter: quarter.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("GetSnapshot {quarter}: {}", super::status_text(&s)))?
        .into_inner();
    let resp = c
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: quarter.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("GetQuarterlySummary {quarter}: {}", super::status_text(&s)))?
        .into_inner();
    if resp.content_hash != header.content_hash {
        anyhow::bail!(
            "the summary of {quarter} comes from content {} but the snapshot's is {}",
            resp.content_hash,
            header.content_hash
        );
    }
    let json = crate::grpc::snapshot::struct_to_json(resp.summary.unwrap_or_default());
    let summary: crate::domain::summary::QuarterlySummary =
        serde_json::from_value(json).context("GetQuarterlySummary: the summary does not read as QuarterlySummary")?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    use crate::report::Format;
    let mut files = Vec::new();
    for (format, ext) in [
        (Format::Json, "json"),
        (Format::Csv, "csv"),
        (Format::Md, "md"),
        (Format::Html, "html"),
        (Format::Xlsx, "xlsx"),
    ] {
        let bytes = crate::report::render_quarterly(&summary, format)?;
        let name = format!("summary-{quarter}.{ext}");
        let path = args.out.join(&name);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(ManifestFile { name, kind: "quarterly_summary".into(), rows: None, sha256: sha256_hex(&bytes) });
    }
    // The header whose lines give the content hash, and the countersignatures: what `doudi snapshot verify --offline`
    // checks with only the CA certificate (docs/countersign.md).
    let cutoff_ts = header.knowledge_cutoff.unwrap_or_default();
    let cutoff_micros = cutoff_ts
        .seconds
        .checked_mul(1_000_000)
        .and_then(|m| m.checked_add(i64::from(cutoff_ts.nanos / 1_000)))
        .ok_or_else(|| anyhow::anyhow!("GetSnapshot {quarter}: knowledge_cutoff out of range"))?;
    let section_hashes: std::collections::BTreeMap<String, String> =
        header.section_hashes.clone().into_iter().collect();
    let snapshot_file = crate::security::countersign::SnapshotFile {
        // v2 when the quarter has a campaigns section (docs/snapshot-format.md "Format v2").
        format: crate::domain::snapshot::format_of(&section_hashes).into(),
        quarter: quarter.clone(),
        as_of: header.as_of.clone(),
        knowledge_cutoff_micros: cutoff_micros,
        previous_quarter: header.previous_quarter.clone(),
        previous_hash: header.previous_hash.clone(),
        section_hashes,
        content_hash: header.content_hash.clone(),
    };
    let listed = c
        .coordination
        .list_snapshot_signatures(pb::ListSnapshotSignaturesRequest { quarter: quarter.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("ListSnapshotSignatures {quarter}: {}", super::status_text(&s)))?
        .into_inner();
    let mut entries = Vec::new();
    for s in &listed.signatures {
        let (status, sig) =
            crate::grpc::snapshot::signature_in(s).map_err(|e| anyhow::anyhow!("ListSnapshotSignatures: {e}"))?;
        entries.push(match sig {
            Some((sig, version)) => crate::security::countersign::SignatureEntry::signed(&sig, &status, version),
            None => crate::security::countersign::SignatureEntry {
                agency: s.agency.clone(),
                hub_status: status,
                content_hash: None,
                signed_at: None,
                signed_at_micros: None,
                version: None,
                signature: None,
                signer_certificate: None,
            },
        });
    }
    let hash = crate::security::countersign::hex32(&header.content_hash)
        .ok_or_else(|| anyhow::anyhow!("GetSnapshot {quarter}: content_hash is not a hash"))?;
    let signatures_file = crate::security::countersign::SignaturesFile::new(&quarter, &hash, entries);
    for (name, kind, bytes) in [
        (
            format!("snapshot-{quarter}.json"),
            super::countersign::KIND_HEADER,
            serde_json::to_vec_pretty(&snapshot_file)?,
        ),
        (
            format!("signatures-{quarter}.json"),
            super::countersign::KIND_SIGNATURES,
            serde_json::to_vec_pretty(&signatures_file)?,
        ),
    ] {
        let path = args.out.join(&name);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(ManifestFile { name, kind: kind.into(), rows: None, sha256: sha256_hex(&bytes) });
    }
    let cutoff = chrono::DateTime::from_timestamp(cutoff_ts.seconds, cutoff_ts.nanos.max(0) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default();
    let manifest = Manifest {
        format_version: 1,
        hub: args.connect.server.clone(),
        agency: me.agency,
        as_of: header.as_of.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        division_code: String::new(),
        format: None,
        encoding: "utf-8".into(),
        files,
        snapshot: Some(SnapshotInfo {
            quarter,
            content_hash: header.content_hash,
            previous_quarter: header.previous_quarter,
            previous_hash: header.previous_hash,
            knowledge_cutoff: cutoff,
            created_by: header.created_by,
        }),
    };
    let path = args.out.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(manifest)
}

/// `doudi export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let m = export(&args).await?;
    match &m.snapshot {
        Some(s) => println!("summary of {} (as of {}, content {}) from {}", s.quarter, m.as_of, s.content_hash, m.hub),
        None => println!(
            "{} facts of {} in force on {} from {}",
            m.files.iter().filter_map(|f| f.rows).sum::<u64>(),
            m.agency,
            m.as_of,
            m.hub
        ),
    }
    for f in &m.files {
        match f.rows {
            Some(rows) => println!("  {:<28}{rows:>9} rows  sha256 {}", f.name, f.sha256),
            None => println!("  {:<28}{:>14}  sha256 {}", f.name, "", f.sha256),
        }
    }
    println!("  {}", args.out.join(MANIFEST).display());
    Ok(())
}
