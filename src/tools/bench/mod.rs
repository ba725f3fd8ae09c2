//! `doudi bench`: the performance figures of docs/spec/performance.md, measured on this machine, one JSON line each.
//!
//! - P1, P2, P3, P5 ([`sized`]): the hub runs as a child process (`doudi serve` of this binary, [`hub::ChildHub`]) on
//!   a fresh SQLite database and PKI; the load is a real gRPC client over mTLS in this process ([`load`]). P1 at a
//!   tenth of `--facts` and at `--facts` (default 100,000 and 1,000,000), each with its floor measured in the same
//!   run ([`p1::floor`]); P2 on the larger data set ([`p2`]); P3 on both ([`p3`]); P5 from the hub's peak RSS
//!   during each P1.
//! - P4 ([`p4`]: the rules in process, then SubmitSettlements against a child hub) and P1-audit ([`p1_audit`], in
//!   process): opt-in with `--only`.
//! - P7, P8 ([`pg`]): on the PostgreSQL server `--postgres` names (opt-in with `--only`).
//! - P6 ([`p6`]): on a hub of its own under the larger P1 load (apart from P1, so P1 and P5 measure the ingest
//!   alone), a WatchChanges subscriber times delivery; its line gives the ingest rate with the subscriber.
//! - P10 ([`p10`]): on the larger data set, MatchRecipients of every distinct ID number of civil affairs' facts.
//!
//! Each line: `{"id", "what", "value", "unit", "floor" (measured in the same run, or null), "ratio" (value / floor,
//! or value / target without a floor), "target", "met", "cores", "load" (1-minute load average when the figure was
//! taken), "n", …}` plus figure-specific fields.

use std::io::Write as _;
use std::path::PathBuf;

pub mod hub;
pub mod load;
pub mod p1;
pub mod p10;
pub mod p1_audit;
pub mod p2;
pub mod p3;
pub mod p4;
pub mod p6;
pub mod pg;
pub mod sized;

/// Flags of `doudi bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Dibao and tekun persons of the synthetic population: P4 and P1-audit use this population [default: 211,300];
    /// for P1–P5 (without --facts) the larger run pushes all of its facts.
    #[arg(long)]
    pub persons: Option<usize>,
    /// Facts of the larger P1 run (the smaller one pushes a tenth) [default: 1,000,000].
    #[arg(long, conflicts_with = "persons")]
    pub facts: Option<usize>,
    /// Only these figures, comma-separated (P1, P2, P3, P5, P6, P10; P4, P1-audit; P7, P8 with --postgres).
    #[arg(long, value_delimiter = ',', default_value = "P1,P2,P3,P5,P6,P10")]
    pub only: Vec<String>,
    /// Also append each JSON line to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Facts per StreamFacts message (and per floor transaction).
    #[arg(long, default_value_t = load::BATCH)]
    pub batch: usize,
    /// Seconds of each of P2's measuring windows (two of GetRecipient, two of Health/Check, alternating).
    #[arg(long, default_value_t = 5)]
    pub p2_secs: u64,
    /// PostgreSQL server for P7 and P8 (each run creates and drops its own database there), e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long)]
    pub postgres: Option<String>,
    /// The hub binary to run as the child process [default: this executable].
    #[arg(long, hide = true)]
    pub hub_exe: Option<PathBuf>,
}

const KNOWN: [&str; 10] = ["P1", "P2", "P3", "P5", "P6", "P10", "P4", "P1-audit", "P7", "P8"];

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Where figures go: stdout, and the `--json-out` file when given.
pub struct Output {
    file: Option<std::fs::File>,
}

impl Output {
    pub fn new(path: Option<&std::path::Path>) -> anyhow::Result<Output> {
        let file = match path {
            Some(p) => Some(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        Ok(Output { file })
    }
}

fn round3(v: f64) -> f64 {
    if v.abs() >= 1000.0 { v.round() } else { (v * 1000.0).round() / 1000.0 }
}

/// One figure, printed as one JSON line.
#[derive(Debug, Clone)]
pub struct Figure {
    pub id: String,
    pub what: String,
    pub value: f64,
    pub unit: String,
    pub floor: Option<f64>,
    pub ratio: f64,
    pub target: serde_json::Value,
    pub met: Option<bool>,
    pub n: usize,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Figure {
    /// A figure with a floor measured in the same run: ratio = value / floor.
    pub fn against_floor(id: &str, what: &str, value: f64, unit: &str, floor: f64, n: usize) -> Figure {
        Figure {
            id: id.into(),
            what: what.into(),
            value,
            unit: unit.into(),
            floor: Some(floor),
            ratio: value / floor,
            target: serde_json::Value::Null,
            met: None,
            n,
            extra: Default::default(),
        }
    }

    /// A figure without a floor: ratio = value / target (the target a minimum).
    pub fn against_target(id: &str, what: &str, value: f64, unit: &str, target: f64, n: usize) -> Figure {
        Figure {
            id: id.into(),
            what: what.into(),
            value,
            unit: unit.into(),
            floor: None,
            ratio: value / target,
            target: serde_json::json!({ "value_min": target }),
            met: Some(value >= target),
            n,
            extra: Default::default(),
        }
    }

    pub fn target(mut self, target: serde_json::Value, met: bool) -> Figure {
        self.target = target;
        self.met = Some(met);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Figure {
        self.extra.insert(key.into(), value.into());
        self
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "what": self.what,
            "value": round3(self.value),
            "unit": self.unit,
            "floor": self.floor.map(round3),
            "ratio": (self.ratio * 1000.0).round() / 1000.0,
            "target": self.target,
            "met": self.met,
            "cores": cores(),
            "load": load_average(),
            "n": self.n,
        });
        if let serde_json::Value::Object(m) = &mut v {
            for (k, x) in &self.extra {
                m.insert(k.clone(), x.clone());
            }
        }
        v
    }

    /// Print the line (and append it to the `--json-out` file).
    pub fn emit(&self, out: &mut Output) -> anyhow::Result<()> {
        let line = self.to_json().to_string();
        println!("{line}");
        if let Some(f) = &mut out.file {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Run the benchmarks asked for.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    for id in &args.only {
        if !KNOWN.contains(&id.as_str()) {
            anyhow::bail!("unknown benchmark {id:?} (known: {})", KNOWN.join(", "));
        }
    }
    if args.batch == 0 || args.batch > 10_000 {
        anyhow::bail!("--batch must be 1..=10000 (the hub's max_batch)");
    }
    if (args.only.iter().any(|o| o == "P7" || o == "P8")) && args.postgres.is_none() {
        anyhow::bail!(
            "P7 and P8 run on PostgreSQL: give --postgres postgres://USER@HOST:PORT/DB (a server where databases may be created)"
        );
    }
    let mut out = Output::new(args.json_out.as_deref())?;
    let wants = |id: &str| args.only.iter().any(|o| o == id);
    if ["P1", "P2", "P3", "P5", "P6", "P10"].iter().any(|id| wants(id)) {
        sized::run(&args, &mut out).await?;
    }
    let persons = args.persons.unwrap_or(crate::tools::synth::DEFAULT_PERSONS);
    if wants("P4") {
        p4::run(persons, &mut out).await?;
    }
    if wants("P1-audit") {
        p1_audit::run(persons, &mut out).await?;
    }
    if let Some(server) = &args.postgres
        && (wants("P7") || wants("P8"))
    {
        pg::run(&args, server, &mut out).await?;
    }
    Ok(())
}
