//! `doudi match FILE.csv`: which persons of a list are enrolled, as the agency may see it (MatchRecipients, the batch
//! comparison 比对 of 国办发〔2023〕39号; docs/file-exchange.md "Batch comparison").
//!
//! Input: a CSV file with an `id_number` column (other columns are ignored), or with no header at all and the ID number
//! in the first column; UTF-8 or GBK (`--encoding`). Output, beside it unless `--out` says otherwise:
//! `FILE.match.csv`, one row per input row in the same order, in the same encoding:
//! `row,id_number,outcome,programs,since,division_codes,reason`, where `outcome` is ENROLLED, NOT_ENROLLED or
//! INVALID, and the three list columns hold one entry per program enrolled, separated by `;`, in the same order.
//! NOT_ENROLLED means nothing the agency may see: an unknown person and one not enrolled look the same.

use std::path::PathBuf;

use anyhow::Context as _;

use super::ConnectArgs;
use super::format::TextEncoding;
use crate::grpc::pb;

/// ID numbers per MatchRecipients message.
pub const MESSAGE_IDS: usize = 5_000;

#[derive(clap::Args, Debug, Clone)]
pub struct MatchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// CSV file of ID numbers (an `id_number` column, or one ID number per line without a header).
    pub file: PathBuf,
    /// Why you compare these persons (required; written to the hub's audit log).
    #[arg(long)]
    pub purpose: String,
    /// Business date of the enrolments compared, YYYY-MM-DD [default: today in Asia/Shanghai].
    #[arg(long)]
    pub as_of: Option<String>,
    /// Text encoding of the file (and of the answers).
    #[arg(long, value_enum, default_value = "utf-8")]
    pub encoding: TextEncoding,
    /// Where to write the answers [default: FILE.match.csv].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Counts of the answers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MatchCounts {
    pub enrolled: u64,
    pub not_enrolled: u64,
    pub invalid: u64,
}

/// The ID numbers of a CSV file's text, in order: the `id_number` column of a file with a header naming it, else
/// the first column of every row.
pub fn read_ids(text: &str) -> anyhow::Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = rdr.records();
    let mut ids = Vec::new();
    let mut column = 0;
    if let Some(first) = rows.next() {
        let first = first.context("reading the first row")?;
        match first.iter().position(|c| c.trim().trim_start_matches('\u{feff}') == "id_number") {
            Some(i) => column = i,
            None => ids.push(first.get(0).unwrap_or("").trim().to_owned()),
        }
    }
    for (n, r) in rows.enumerate() {
        let r = r.with_context(|| format!("reading row {}", n + 2))?;
        ids.push(r.get(column).unwrap_or("").trim().to_owned());
    }
    Ok(ids)
}

/// Compare `ids` in one call, [`MESSAGE_IDS`] per message; the results in order.
pub async fn compare(args: &MatchArgs, ids: &[String]) -> anyhow::Result<Vec<pb::MatchResult>> {
    let mut c = args.connect.connect().await?;
    let purpose = args.purpose.clone();
    let as_of = args.as_of.clone().unwrap_or_default();
    let messages: Vec<pb::MatchRecipientsRequest> = ids
        .chunks(MESSAGE_IDS)
        .enumerate()
        .map(|(i, chunk)| pb::MatchRecipientsRequest {
            id_numbers: chunk.to_vec(),
            purpose: if i == 0 { purpose.clone() } else { String::new() },
            as_of: if i == 0 { as_of.clone() } else { String::new() },
        })
        .collect();
    let mut answers = c
        .exchange
        .match_recipients(futures::stream::iter(messages))
        .await
        .map_err(|s| anyhow::anyhow!("MatchRecipients: {}", super::status_text(&s)))?
        .into_inner();
    let mut out = Vec::with_capacity(ids.len());
    while let Some(r) =
        answers.message().await.map_err(|s| anyhow::anyhow!("MatchRecipients: {}", super::status_text(&s)))?
    {
        out.extend(r.results);
    }
    anyhow::ensure!(out.len() == ids.len(), "the hub answered {} of {} ID numbers", out.len(), ids.len());
    Ok(out)
}

/// The answers as CSV text (see the module's documentation), and their counts.
pub fn render(results: &[pb::MatchResult]) -> anyhow::Result<(String, MatchCounts)> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["row", "id_number", "outcome", "programs", "since", "division_codes", "reason"])?;
    let mut counts = MatchCounts::default();
    for r in results {
        let outcome = match pb::MatchOutcome::try_from(r.outcome) {
            Ok(pb::MatchOutcome::Enrolled) => {
                counts.enrolled += 1;
                "ENROLLED"
            }
            Ok(pb::MatchOutcome::NotEnrolled) => {
                counts.not_enrolled += 1;
                "NOT_ENROLLED"
            }
            _ => {
                counts.invalid += 1;
                "INVALID"
            }
        };
        let list = |f: &dyn Fn(&pb::Enrolment) -> String| r.enrolments.iter().map(f).collect::<Vec<_>>().join(";");
        let programs = list(&|e| {
            pb::Program::try_from(e.program)
                .map(|p| p.as_str_name().trim_start_matches("PROGRAM_").to_owned())
                .unwrap_or_default()
        });
        let row = (r.index + 1).to_string();
        w.write_record([
            row.as_str(),
            &r.id_number,
            outcome,
            &programs,
            &list(&|e| e.since.clone()),
            &list(&|e| e.division_code.clone()),
            &r.reason,
        ])?;
    }
    let text = String::from_utf8(w.into_inner().context("writing CSV")?).context("CSV text")?;
    Ok((text, counts))
}

/// `doudi match`.
pub async fn run(args: MatchArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = args.encoding.decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let ids = read_ids(&text).with_context(|| format!("reading {}", args.file.display()))?;
    anyhow::ensure!(!ids.is_empty(), "{} holds no ID number", args.file.display());
    let results = compare(&args, &ids).await?;
    let (csv_text, counts) = render(&results)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".match.csv");
        PathBuf::from(name)
    });
    std::fs::write(&out, args.encoding.encode(&csv_text)).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} ID numbers compared: {} enrolled, {} not enrolled (as far as you may see), {} invalid; answers in {}",
        ids.len(),
        counts.enrolled,
        counts.not_enrolled,
        counts.invalid,
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_ids_takes_the_id_number_column_or_the_first() {
        let with_header = "\u{feff}name,id_number\n甲,11010519491231002X\n";
        assert_eq!(super::read_ids(with_header).unwrap(), vec!["11010519491231002X"]);
        let bare = "110105194912310021\n 11010519491231002X ,x\n";
        assert_eq!(super::read_ids(bare).unwrap(), vec!["110105194912310021", "11010519491231002X"]);
    }
}
