//! `doudi export --out DIR`: the agency's own facts in force on a date, one file per payload kind in the format
//! `doudi push` reads, and `manifest.json` (docs/file-exchange.md). The facts are read by paging through
//! ListRecipients (the hub's only bulk read path; every page is audited like any list).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use super::ConnectArgs;
use super::format::{FileFormat, parse_kind, payload_kind, write_facts};
use super::manifest::{MANIFEST, Manifest, ManifestFile, sha256_hex};
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
}

/// Write the files and the manifest; returns the manifest.
pub async fn export(args: &ExportArgs) -> anyhow::Result<Manifest> {
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
        None => crate::domain::calendar::today_shanghai().to_string(),
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
            rows: facts.len() as u64,
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
        format: args.format,
        encoding: "utf-8".into(),
        files,
    };
    let path = args.out.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(manifest)
}

/// `doudi export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let m = export(&args).await?;
    println!(
        "{} facts of {} in force on {} from {}",
        m.files.iter().map(|f| f.rows).sum::<u64>(),
        m.agency,
        m.as_of,
        m.hub
    );
    for f in &m.files {
        println!("  {:<28}{:>9} rows  sha256 {}", f.name, f.rows, f.sha256);
    }
    println!("  {}", args.out.join(MANIFEST).display());
    Ok(())
}
