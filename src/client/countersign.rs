//! `doudi snapshot sign QUARTER` (as an agency: countersign a frozen quarter with the agency's client key) and
//! `doudi snapshot verify --offline DIR` (check a snapshot export and its countersignatures with only the CA
//! certificate). docs/countersign.md.

use std::path::Path;

use anyhow::Context as _;

use super::ConnectArgs;
use super::manifest::{Manifest, sha256_hex};
use crate::domain::countersign::SignatureStatus;
use crate::grpc::pb;
use crate::security::countersign::{AgencySigner, SignaturesFile, SnapshotFile};

/// Manifest kind of `snapshot-QUARTER.json` in a snapshot export.
pub const KIND_HEADER: &str = "snapshot_header";
/// Manifest kind of `signatures-QUARTER.json` in a snapshot export.
pub const KIND_SIGNATURES: &str = "snapshot_signatures";

#[derive(clap::Args, Debug, Clone)]
pub struct SignArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The frozen quarter, YYYYQn, e.g. 2023Q2.
    pub quarter: String,
}

/// Sign: read the snapshot's content hash (GetSnapshot), sign the `doudi-snapshot-countersign-v1` message with the
/// agency's client key (the `--key` / CERTS_DIR/AGENCY.key of the connection), check the signature with the CA
/// locally, and submit it (SignSnapshot) with the certificate. Returns what the hub kept.
pub async fn sign(args: &SignArgs) -> anyhow::Result<pb::SnapshotSignature> {
    let q: crate::domain::calendar::Quarter =
        args.quarter.parse().map_err(|e| anyhow::anyhow!("quarter {:?}: {e} (expected YYYYQn)", args.quarter))?;
    let quarter = q.to_string();
    let id = args.connect.identity()?;
    let signer = AgencySigner::from_pem(&id.key_pem, &id.cert_pem).map_err(|e| anyhow::anyhow!(e))?;
    let mut c = args.connect.connect().await?;
    let header = c
        .coordination
        .get_snapshot(pb::GetSnapshotRequest { quarter: quarter.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("GetSnapshot {quarter}: {}", super::status_text(&s)))?
        .into_inner();
    let hash = crate::security::countersign::hex32(&header.content_hash).ok_or_else(|| {
        anyhow::anyhow!("GetSnapshot {quarter}: content_hash {:?} is not a hash", header.content_hash)
    })?;
    let now = crate::store::to_micros(chrono::Utc::now());
    let sig = signer.sign(&quarter, hash, now);
    crate::security::countersign::verify(&sig, &hash, &id.ca_pem, None)
        .map_err(|e| anyhow::anyhow!("the signature does not check with the CA before sending: {e}"))?;
    let kept = c
        .coordination
        .sign_snapshot(pb::SignSnapshotRequest {
            quarter: quarter.clone(),
            content_hash: header.content_hash.clone(),
            signed_at: Some(crate::grpc::convert::timestamp(crate::store::from_micros(now))),
            signature: sig.signature,
            signer_certificate: sig.signer_cert_der,
        })
        .await
        .map_err(|s| anyhow::anyhow!("SignSnapshot {quarter}: {}", super::status_text(&s)))?
        .into_inner();
    Ok(kept)
}

/// `doudi snapshot sign`.
pub async fn run_sign(args: SignArgs) -> anyhow::Result<()> {
    let kept = sign(&args).await?;
    println!(
        "{} countersigned {} (content {}) at {}: kept as version {}",
        kept.agency,
        kept.quarter,
        kept.content_hash,
        kept.signed_at
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default(),
        kept.version
    );
    Ok(())
}

/// What an offline check of a snapshot export found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineReport {
    pub quarter: String,
    /// The content hash recomputed from the exported header.
    pub content_hash: String,
    /// Everything that does not hold, one sentence each (files, hashes); signatures are in `signatures`.
    pub problems: Vec<String>,
    /// Each agency's signature as checked with the CA, in the file's order.
    pub signatures: Vec<(String, SignatureStatus)>,
}

impl OfflineReport {
    /// Nothing differs and no signature is invalid (a missing one is reported, not a failure).
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && !self.signatures.iter().any(|(_, s)| matches!(s, SignatureStatus::Invalid(_)))
    }
}

/// Check the snapshot export in `dir` (`doudi export --snapshot`) with only the CA certificate(s) `ca_pem`: every
/// file the manifest lists has its SHA-256; the content hash recomputed from `snapshot-QUARTER.json` (header and
/// section hashes, docs/snapshot-format.md) is the one stored there, in the manifest and in the summary; and each
/// signature of `signatures-QUARTER.json` verifies over that hash ([`crate::security::countersign::verify`]).
///
/// # Errors
/// Only when the manifest cannot be read or is not a snapshot export's; everything else is in the report.
pub fn verify_offline(dir: &Path, ca_pem: &[u8]) -> anyhow::Result<OfflineReport> {
    let m = Manifest::read(dir)?;
    let info = m.snapshot.clone().ok_or_else(|| {
        anyhow::anyhow!("{}: not a snapshot export (doudi export --snapshot QUARTER writes one)", dir.display())
    })?;
    let mut r = OfflineReport {
        quarter: info.quarter.clone(),
        content_hash: String::new(),
        problems: Vec::new(),
        signatures: Vec::new(),
    };
    // (kind, name, bytes) of every file the manifest lists and that could be read.
    let mut files: Vec<(String, String, Vec<u8>)> = Vec::new();
    for f in &m.files {
        match std::fs::read(dir.join(&f.name)) {
            Ok(bytes) => {
                if sha256_hex(&bytes) != f.sha256 {
                    r.problems.push(format!("file {}: its SHA-256 is not the manifest's (altered)", f.name));
                }
                files.push((f.kind.clone(), f.name.clone(), bytes));
            }
            Err(e) => r.problems.push(format!("file {}: {e}", f.name)),
        }
    }
    let of_kind = |kind: &str| files.iter().find(|(k, _, _)| k == kind).map(|(_, n, b)| (n, b));
    let Some((name, bytes)) = of_kind(KIND_HEADER) else {
        r.problems.push(format!("no {KIND_HEADER} file: the export was made before countersigning; export it again"));
        return Ok(r);
    };
    let header: SnapshotFile = match serde_json::from_slice(bytes) {
        Ok(h) => h,
        Err(e) => {
            r.problems.push(format!("{name}: not a snapshot header: {e}"));
            return Ok(r);
        }
    };
    let hash = match header.recompute() {
        Ok(h) => h,
        Err(e) => {
            r.problems.push(format!("{name}: {e}"));
            return Ok(r);
        }
    };
    r.content_hash = hex::encode(hash);
    if header.quarter != info.quarter {
        r.problems.push(format!("{name}: quarter {} is not the manifest's {}", header.quarter, info.quarter));
    }
    for (what, stated) in [(name.as_str(), &header.content_hash), (super::manifest::MANIFEST, &info.content_hash)] {
        if *stated != r.content_hash {
            r.problems.push(format!(
                "{what}: content hash {stated} is not the one the header recomputes to, {}",
                r.content_hash
            ));
        }
    }
    let summary_json = files.iter().find(|(k, n, _)| k == "quarterly_summary" && n.ends_with(".json"));
    if let Some((_, name, bytes)) = summary_json {
        let stated = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.pointer("/snapshot/content_hash").and_then(|h| h.as_str().map(str::to_owned)));
        if stated.as_deref() != Some(r.content_hash.as_str()) {
            r.problems.push(format!("{name}: the summary's content hash {stated:?} is not {}", r.content_hash));
        }
    }
    let Some((name, bytes)) = of_kind(KIND_SIGNATURES) else {
        r.problems
            .push(format!("no {KIND_SIGNATURES} file: the export was made before countersigning; export it again"));
        return Ok(r);
    };
    let sigs: SignaturesFile = match serde_json::from_slice(bytes) {
        Ok(s) => s,
        Err(e) => {
            r.problems.push(format!("{name}: not a signatures file: {e}"));
            return Ok(r);
        }
    };
    if sigs.format != crate::domain::countersign::FORMAT || sigs.algorithm != crate::domain::countersign::ALGORITHM {
        r.problems
            .push(format!("{name}: format {:?} / algorithm {:?} is not this release's", sigs.format, sigs.algorithm));
    }
    if sigs.quarter != r.quarter || sigs.content_hash != r.content_hash {
        r.problems.push(format!(
            "{name}: names {} {}, not {} {}",
            sigs.quarter, sigs.content_hash, r.quarter, r.content_hash
        ));
    }
    for e in &sigs.agencies {
        let status = match e.countersignature(&r.quarter) {
            Ok(None) => SignatureStatus::Missing,
            Ok(Some(s)) => match crate::security::countersign::verify(&s, &hash, ca_pem, None) {
                Ok(()) => SignatureStatus::Valid,
                Err(f) => SignatureStatus::Invalid(f.to_string()),
            },
            Err(why) => SignatureStatus::Invalid(why),
        };
        r.signatures.push((e.agency.clone(), status));
    }
    Ok(r)
}

/// One line per agency: `VALID`, `MISSING` or `INVALID: why`, after the agency code.
pub fn signature_lines(sigs: &[(String, SignatureStatus)]) -> Vec<String> {
    sigs.iter()
        .map(|(agency, s)| match s {
            SignatureStatus::Invalid(why) => format!("signature {agency:<22} INVALID: {why}"),
            other => format!("signature {agency:<22} {}", other.as_str()),
        })
        .collect()
}

/// `doudi snapshot verify --offline DIR --ca FILE`: prints the report; exits with status 1 when it is not
/// [`OfflineReport::ok`].
pub fn run_offline(dir: &Path, ca: &Path) -> anyhow::Result<()> {
    let ca_pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let r = verify_offline(dir, &ca_pem)?;
    println!("snapshot {} exported in {} (checked with {} only)", r.quarter, dir.display(), ca.display());
    println!("content_hash recomputed {}", r.content_hash);
    for p in &r.problems {
        println!("DIFFERS: {p}");
    }
    for l in signature_lines(&r.signatures) {
        println!("{l}");
    }
    if r.ok() {
        println!("valid: the files, the content hash and every signature present check with the CA");
        Ok(())
    } else {
        Err(crate::ops::CheckFailed.into())
    }
}
