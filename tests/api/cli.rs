//! The agency client commands (`doudi push`, `get`, `list`, `export`) against a real hub over mTLS: through their
//! library functions, and the 100,000-row interrupted push through the built binary. Expected counts are worked
//! out by hand from the rows each test writes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use doudi::client::ConnectArgs;
use doudi::client::export::{ExportArgs, export};
use doudi::client::format::{FileFormat, TextEncoding};
use doudi::client::get::{GetArgs, get};
use doudi::client::list::{ListArgs, list};
use doudi::client::push::{Counts, PushArgs, push};
use doudi::domain::id_number::IdNumber;
use macro_rules_attribute::apply;

use crate::support::{TestApp, id, spawn_app};

const HEADER: &str = "kind,fact_id,source_version,id_number,division_code,valid_from,valid_to,program,residence,\
                      rural_class,urban_mode,support_mode,household_id,monthly_benefit,status";

/// A directory holding ca.pem, AGENCY.pem and AGENCY.key, as `--certs-dir` expects.
fn certs_dir(app: &TestApp, agency: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let id = app.identity(agency, None);
    std::fs::write(d.path().join("ca.pem"), &id.ca_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.pem")), &id.cert_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.key")), &id.key_pem).unwrap();
    d
}

fn push_args(conn: &ConnectArgs, file: &Path) -> PushArgs {
    PushArgs {
        connect: conn.clone(),
        file: file.to_owned(),
        format: None,
        encoding: TextEncoding::Utf8,
        kind: None,
        rejects: None,
        batch: 5_000,
        resume: false,
        stop_after_batches: None,
    }
}

fn counts(accepted: u64, new_version: u64, duplicate: u64, stale: u64, rejected: u64) -> Counts {
    Counts { accepted, new_version, duplicate, stale, rejected }
}

/// The rejects file as (row, fact_id, field, reason, source).
fn rejects(path: &Path, encoding: &'static encoding_rs::Encoding) -> Vec<(u64, String, String, String, String)> {
    let bytes = std::fs::read(path).unwrap();
    let (text, _, bad) = encoding.decode(&bytes);
    assert!(!bad, "{} is not valid {}", path.display(), encoding.name());
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), ["row", "fact_id", "field", "reason", "source"]);
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].parse().unwrap(), x[1].into(), x[2].into(), x[3].into(), x[4].into())
        })
        .collect()
}

fn rural(fact_id: &str, id_number: &str, class: u8, benefit: &str, household: &str) -> String {
    format!(
        "assistance,{fact_id},1,{id_number},621022101203,2023-01-01,,DIBAO,RURAL,{class},,,{household},{benefit},ACTIVE"
    )
}

/// The ID number with its check character replaced by a wrong one.
fn bad_check(id_number: &str) -> String {
    let last = id_number.chars().last().unwrap();
    format!("{}{}", &id_number[..17], if last == '0' { '1' } else { '0' })
}

#[apply(e2e!)]
#[tokio::test]
async fn push_csv_counts_each_outcome_and_lists_exactly_the_bad_rows() {
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (1..=8).map(|s| id("621022", (1985, 12, 31), s)).collect();
    // Line 1 is the header; data rows are lines 2–9.
    let lines = [
        HEADER.to_owned(),
        rural("MZ-1", &ids[0], 2, "442.00", "HH-1"), // 2 accepted
        "assistance,MZ-2,1,".to_owned()
            + &ids[1]
            + ",621022,2023-01-01,2024-01-01,TEKUN,RURAL,,,DISPERSED,,605.00,ACTIVE", // 3 accepted
        rural("MZ-3", &bad_check(&ids[2]), 2, "442.00", "HH-3"), // 4 hub: id_number
        rural("MZ-4", &ids[3], 2, "44.2.0", "HH-4"), // 5 hub: monthly_benefit
        rural("MZ-5", &ids[4], 2, "442.00", "HH-5") + ",surplus", // 6 file: column 16
        rural("MZ-6", &ids[5], 2, "442.00", "HH-6").replace("2023-01-01", "2023-02-30"), // 7 hub: valid_from
        rural("MZ-7", &ids[6], 2, "442.00", "HH-7").replace("DIBAO", "DIBAOO"), // 8 file: program
        rural("MZ-8", &ids[7], 3, "89.00", "HH-8"),  // 9 accepted
    ];
    let file = dir.path().join("dibao.csv");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let r = push(&push_args(&conn, &file)).await.unwrap();
    let f = &r.files[0];
    assert_eq!(f.rows, 8);
    assert_eq!(f.counts, counts(3, 0, 0, 0, 3));
    assert_eq!(f.unreadable, 2);
    assert_eq!(app.fact_versions().await, 3);
    let rj = rejects(&dir.path().join("dibao.csv.rejects.csv"), encoding_rs::UTF_8);
    let short: Vec<(u64, &str, &str, &str)> =
        rj.iter().map(|(r, id, f, _, s)| (*r, id.as_str(), f.as_str(), s.as_str())).collect();
    assert_eq!(
        short,
        [
            (4, "MZ-3", "id_number", "hub"),
            (5, "MZ-4", "monthly_benefit", "hub"),
            (6, "MZ-5", "column 16", "file"),
            (7, "MZ-6", "valid_from", "hub"),
            (8, "MZ-7", "program", "file"),
        ]
    );
    assert!(rj[0].3.contains("check character"), "{}", rj[0].3);
    assert!(rj[1].3.contains("decimal yuan"), "{}", rj[1].3);
    assert!(rj[2].3.contains("16 cells") && rj[2].3.contains("15 columns"), "{}", rj[2].3);
    assert!(rj[3].3.contains("calendar date"), "{}", rj[3].3);
    assert!(rj[4].3.contains("\"DIBAOO\"") && rj[4].3.contains("TEKUN"), "{}", rj[4].3);

    // The same file again: the three stored rows are duplicates, the bad ones as bad as before.
    let r = push(&push_args(&conn, &file)).await.unwrap();
    assert_eq!(r.files[0].counts, counts(0, 0, 3, 0, 3));
    assert_eq!(r.files[0].unreadable, 2);
    assert_eq!(app.fact_versions().await, 3);

    // Changes as JSON Lines (flat form, numbers as numbers): MZ-1 version 2 with class 1 → NEW_VERSION; MZ-8
    // version 1 with another benefit → STALE; an unknown key → not sent.
    let jl = dir.path().join("changes.jsonl");
    let common = |fid: &str, n: &str, v: u32| {
        format!(
            r#""kind":"assistance","fact_id":"{fid}","source_version":{v},"id_number":"{n}","division_code":"621022101203","valid_from":"2023-01-01","program":"DIBAO","residence":"RURAL","status":"ACTIVE""#
        )
    };
    std::fs::write(
        &jl,
        format!(
            "{{{},\"rural_class\":1,\"monthly_benefit\":\"465.00\"}}\n{{{},\"rural_class\":3,\"monthly_benefit\":\"90.00\"}}\n\n{{{},\"rural_class\":2,\"monthly_benefit\":\"442.00\",\"remark\":\"x\"}}\n",
            common("MZ-1", &ids[0], 2),
            common("MZ-8", &ids[7], 1),
            common("MZ-9", &ids[0], 1)
        ),
    )
    .unwrap();
    let r = push(&push_args(&conn, &jl)).await.unwrap();
    assert_eq!(r.files[0].counts, counts(0, 1, 0, 1, 0));
    let rj = rejects(&dir.path().join("changes.jsonl.rejects.csv"), encoding_rs::UTF_8);
    assert_eq!(rj.len(), 1);
    assert_eq!((rj[0].0, rj[0].1.as_str(), rj[0].2.as_str(), rj[0].4.as_str()), (4, "MZ-9", "remark", "file"));
    assert!(rj[0].3.contains("unknown column"), "{}", rj[0].3);
    assert_eq!(app.fact_versions().await, 4);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn gbk_file_with_chinese_text_pushes_and_reads_back() {
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let a = id("621022", (1960, 3, 1), 11);
    let b = id("621022", (1962, 4, 2), 12);
    let text = [
        HEADER.to_owned(),
        rural("HX-1", &a, 2, "442.00", "环县-曲子镇-0001"),
        rural("HX-2", &b, 1, "465.00", "环县-环城镇-0002"),
        rural("HX-3", &bad_check(&a), 1, "465.00", "环县-环城镇-0003"),
    ]
    .join("\r\n")
        + "\r\n";
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert_ne!(gbk.as_ref(), text.as_bytes(), "the Chinese text must be encoded differently from UTF-8");
    let file = dir.path().join("环县低保.csv");
    std::fs::write(&file, &gbk).unwrap();

    // Read as UTF-8 (the default) the file is refused, naming the first bad line, and nothing is sent.
    let e = push(&push_args(&conn, &file)).await.unwrap_err().to_string();
    assert!(e.contains("line 2 is not valid UTF-8") && e.contains("--encoding gbk"), "{e}");
    assert!(e.contains("nothing was sent"), "{e}");
    assert_eq!(app.fact_versions().await, 0);

    let mut args = push_args(&conn, &file);
    args.encoding = TextEncoding::Gbk;
    let r = push(&args).await.unwrap();
    assert_eq!(r.files[0].counts, counts(2, 0, 0, 0, 1));
    // The rejects file is written in the input's family (GB18030 reads as GBK here).
    let rj = rejects(&dir.path().join("环县低保.csv.rejects.csv"), encoding_rs::GB18030);
    assert_eq!(rj.len(), 1);
    assert_eq!((rj[0].0, rj[0].1.as_str(), rj[0].2.as_str()), (4, "HX-3", "id_number"));

    let person = get(&GetArgs {
        connect: conn.clone(),
        id_number: a.clone(),
        as_of: Some("2023-06-30".into()),
        purpose: "年度复核".into(),
        json: true,
    })
    .await
    .unwrap();
    let json = doudi::client::get::render(&person, true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["facts"][0]["household_id"], "环县-曲子镇-0001");
    assert_eq!(v["facts"][0]["monthly_benefit"], "442.00");

    // A GBK header naming a column that no kind has: the whole file is refused, the column named in Chinese.
    let bad = format!("{HEADER},备注\r\n{},困难\r\n", rural("HX-4", &b, 1, "465.00", "户"));
    let file2 = dir.path().join("备注.csv");
    std::fs::write(&file2, encoding_rs::GBK.encode(&bad).0).unwrap();
    let mut args = push_args(&conn, &file2);
    args.encoding = TextEncoding::Gb18030;
    let e = push(&args).await.unwrap_err().to_string();
    assert!(e.contains("column 16 \"备注\""), "{e}");
    assert_eq!(app.fact_versions().await, 2);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn get_and_list_show_the_pushed_values() {
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let a = id("621022", (1970, 1, 1), 21);
    let b = id("621002", (1971, 1, 1), 22);
    let file = dir.path().join("two.csv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}\n{}\nassistance,XF-2,1,{b},621002001001,2023-01-01,,DIBAO,URBAN,,GAP,,西峰-7,512.00,ACTIVE\n",
            rural("HX-1", &a, 4, "62.00", "环县-7")
        ),
    )
    .unwrap();
    assert_eq!(push(&push_args(&conn, &file)).await.unwrap().files[0].counts, counts(2, 0, 0, 0, 0));

    let person = get(&GetArgs {
        connect: conn.clone(),
        id_number: b.clone(),
        as_of: Some("2023-06-30".into()),
        purpose: "case review".into(),
        json: false,
    })
    .await
    .unwrap();
    let table = doudi::client::get::render(&person, false).unwrap();
    for want in [b.as_str(), "XF-2", "urban_mode=GAP", "monthly_benefit=512.00", "household_id=西峰-7", "621002001001"]
    {
        assert!(table.contains(want), "{want} missing from:\n{table}");
    }

    let args = ListArgs {
        connect: conn.clone(),
        division: Some("621022".into()),
        program: Some("dibao".into()),
        as_of: Some("2023-06-30".into()),
        page_size: 10,
        page_token: String::new(),
        all: false,
        purpose: "monthly check".into(),
        json: false,
    };
    let l = list(&args).await.unwrap();
    assert_eq!(l.total_size, 1);
    assert_eq!(l.recipients.len(), 1);
    assert_eq!(l.recipients[0].id_number, a);
    let table = doudi::client::list::render(&l, false).unwrap();
    assert!(table.contains("rural_class=4") && table.contains("monthly_benefit=62.00") && table.contains("环县-7"));

    // Every page, one person a page: both persons, in JSON.
    let l = list(&ListArgs { division: None, page_size: 1, all: true, json: true, ..args }).await.unwrap();
    assert_eq!(l.total_size, 2);
    let mut got: Vec<String> = l.recipients.iter().map(|r| r.id_number.clone()).collect();
    got.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(got, want);
    let v: serde_json::Value = serde_json::from_str(&doudi::client::list::render(&l, true).unwrap()).unwrap();
    assert_eq!(v["total_size"], 2);
    app.stop().await;
}

fn export_args(conn: &ConnectArgs, out: &Path, format: FileFormat) -> ExportArgs {
    ExportArgs {
        connect: conn.clone(),
        out: out.to_owned(),
        division: None,
        as_of: Some("2023-06-30".into()),
        format,
        purpose: "reconciliation".into(),
        page_size: 2,
        snapshot: None,
    }
}

/// Five assistance rows in force on 2023-06-30 (one of them until 2024), one already ended on that date.
fn five_and_one_ended(dir: &Path) -> PathBuf {
    let mut lines = vec![HEADER.to_owned()];
    for s in 1..=5u16 {
        lines.push(rural(&format!("R-{s}"), &id("621027", (1950, 1, s as u32), s), 2, "442.00", &format!("镇原-{s}")));
    }
    lines[5] = lines[5].replace(",2023-01-01,,", ",2023-01-01,2024-01-01,");
    lines.push(
        rural("R-6", &id("621027", (1950, 2, 1), 6), 2, "442.00", "")
            .replace(",2023-01-01,,", ",2022-01-01,2023-01-01,"),
    );
    let file = dir.join("six.csv");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    file
}

#[apply(e2e!)]
#[tokio::test]
async fn export_then_push_back_is_all_duplicate() {
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let file = five_and_one_ended(dir.path());
    assert_eq!(push(&push_args(&conn, &file)).await.unwrap().files[0].counts, counts(6, 0, 0, 0, 0));
    // Another agency's fact about one of the persons: civil_affairs reads it but does not export it.
    let hr = certs_dir(&app, "human_resources");
    let hr_conn = ConnectArgs::from_dir(&app.server, hr.path(), "human_resources");
    let emp = dir.path().join("emp.csv");
    std::fs::write(
        &emp,
        format!(
            "fact_id,source_version,id_number,division_code,valid_from,status\nE-1,1,{},621027,2023-01-01,flexible\n",
            id("621027", (1950, 1, 1), 1)
        ),
    )
    .unwrap();
    let mut args = push_args(&hr_conn, &emp);
    args.kind = Some("employment".into());
    assert_eq!(push(&args).await.unwrap().files[0].counts, counts(1, 0, 0, 0, 0));

    for format in [FileFormat::Csv, FileFormat::Jsonl] {
        let out = dir.path().join(format!("export-{}", format.extension()));
        let m = export(&export_args(&conn, &out, format)).await.unwrap();
        assert_eq!(m.agency, "civil_affairs");
        assert_eq!(m.as_of, "2023-06-30");
        assert_eq!(m.files.len(), 1, "civil_affairs pushes one kind");
        let f = &m.files[0];
        assert_eq!(
            (f.name.as_str(), f.kind.as_str(), f.rows),
            (&*format!("assistance.{}", format.extension()), "assistance", Some(5))
        );
        let bytes = std::fs::read(out.join(&f.name)).unwrap();
        assert_eq!(f.sha256, doudi::client::manifest::sha256_hex(&bytes));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("镇原-3") && !text.contains("R-6") && !text.contains("E-1"), "{text}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(written["files"][0]["rows"], 5);

        let r = push(&push_args(&conn, &out)).await.unwrap();
        assert_eq!(r.files.len(), 1);
        assert_eq!(r.files[0].counts, counts(0, 0, 5, 0, 0), "{format:?}");
        assert_eq!(r.files[0].unreadable, 0);
    }
    assert_eq!(app.fact_versions().await, 7);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn tampered_export_is_refused_before_anything_is_sent() {
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let file = five_and_one_ended(dir.path());
    push(&push_args(&conn, &file)).await.unwrap();
    let out = dir.path().join("export");
    export(&export_args(&conn, &out, FileFormat::Csv)).await.unwrap();
    let data = out.join("assistance.csv");
    let original = std::fs::read_to_string(&data).unwrap();

    // One benefit changed: the SHA-256 differs; the change would be a STALE push, but nothing is sent at all.
    std::fs::write(&data, original.replacen("442.00", "443.00", 1)).unwrap();
    let e = push(&push_args(&conn, &out)).await.unwrap_err().to_string();
    assert!(e.contains("assistance.csv: SHA-256 is") && e.contains("nothing was sent"), "{e}");

    // One row removed and the manifest's hash fixed up by hand: the row count still tells.
    let fewer: String = original.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(&data, &fewer).unwrap();
    let mpath = out.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["files"][0]["sha256"] = doudi::client::manifest::sha256_hex(fewer.as_bytes()).into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let e = push(&push_args(&conn, &out)).await.unwrap_err().to_string();
    assert!(e.contains("assistance.csv: 4 rows but the manifest says 5"), "{e}");
    assert!(!out.join("assistance.csv.rejects.csv").exists(), "nothing was pushed, so no rejects file");
    assert_eq!(app.fact_versions().await, 6);
    app.stop().await;
}

const COUNTIES: [&str; 8] = ["621002", "621021", "621022", "621023", "621024", "621025", "621026", "621027"];

/// `n` valid rural dibao rows, one person each: ID numbers from (county, birth date, sequence) with the check
/// character computed by `IdNumber::from_parts`.
fn big_csv(path: &Path, n: usize) {
    use std::io::Write as _;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "{HEADER}").unwrap();
    let base = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
    for i in 0..n {
        let county = COUNTIES[i % 8];
        let birth = base + chrono::Days::new((i / 8 / 1000) as u64);
        let idn = IdNumber::from_parts(county, birth, ((i / 8) % 1000) as u16);
        writeln!(
            w,
            "assistance,B-{i},1,{},{county}101201,2023-01-01,,DIBAO,RURAL,2,,,H-{i},442.00,ACTIVE",
            idn.as_str()
        )
        .unwrap();
    }
}

/// An outcome count from the summary `doudi push` prints (`  accepted     35000`).
fn count_in(stdout: &str, outcome: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(outcome).and_then(|n| n.trim().parse::<u64>().ok()))
        .unwrap_or_else(|| panic!("no {outcome} count in:\n{stdout}"))
}

fn accepted_in(stdout: &str) -> u64 {
    count_in(stdout, "accepted")
}

#[apply(e2e!)]
#[tokio::test]
async fn push_of_100k_rows_interrupted_and_resumed_loses_and_repeats_nothing() {
    const N: usize = 100_000;
    let t = Instant::now();
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.csv");
    big_csv(&file, N);
    let run = |extra: &'static [&'static str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"));
        cmd.arg("push")
            .arg(&file)
            .args(["--server", &app.server, "--agency", "civil_affairs", "--batch", "5000"])
            .arg("--certs-dir")
            .arg(certs.path())
            .args(extra);
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            stdout
        }
    };

    // First run: interrupted after 7 acknowledged batches of 5,000 rows.
    let first = run(&["--stop-after-batches", "7"]).await;
    assert_eq!(accepted_in(&first), 35_000, "{first}");
    assert!(first.contains("stopped early"), "{first}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("all.csv.push-state")).unwrap()).unwrap();
    assert_eq!(state["last_row"], 35_001, "the header is line 1, so row 35,001 is the 35,000th");
    assert_eq!(app.fact_versions().await, 35_000);

    // Resumed: the other 65,000 rows, nothing sent twice.
    let second = run(&["--resume"]).await;
    assert!(second.contains("resumed after row 35001"), "{second}");
    let accepted_second = accepted_in(&second);
    assert_eq!(accepted_second, 65_000, "{second}");
    assert_eq!(35_000 + accepted_second, N as u64);
    assert!(!dir.path().join("all.csv.push-state").exists(), "the state file goes when the file is done");
    assert_eq!(rejects(&dir.path().join("all.csv.rejects.csv"), encoding_rs::UTF_8).len(), 0);

    // The hub holds exactly one version of each row, and lists 100,000 persons.
    assert_eq!(app.fact_versions().await, N as i64);
    let hub_certs = certs_dir(&app, "civil_affairs");
    let l = list(&ListArgs {
        connect: ConnectArgs::from_dir(&app.server, hub_certs.path(), "civil_affairs"),
        division: None,
        program: Some("DIBAO".into()),
        as_of: Some("2023-06-30".into()),
        page_size: 1,
        page_token: String::new(),
        all: false,
        purpose: "count".into(),
        json: false,
    })
    .await
    .unwrap();
    assert_eq!(l.total_size, N as i64);
    eprintln!("100k push, interrupted and resumed: {:.1} s", t.elapsed().as_secs_f64());
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn push_of_100k_rows_killed_mid_batch_and_resumed_stores_each_row_once() {
    const N: u64 = 100_000;
    const BATCH: u64 = 2_000;
    let t = Instant::now();
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.csv");
    big_csv(&file, N as usize);
    let state_file = dir.path().join("all.csv.push-state");
    let cmd = |resume: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"));
        cmd.arg("push")
            .arg(&file)
            .args(["--server", &app.server, "--agency", "civil_affairs", "--batch", &BATCH.to_string()])
            .arg("--certs-dir")
            .arg(certs.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };

    // First run: killed (SIGKILL) once at least three batches are acknowledged, most likely with a batch in flight.
    let mut child = cmd(false).spawn().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let acked = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["batches"].as_u64())
            .unwrap_or(0);
        if acked >= 3 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the push ended before it could be interrupted");
        assert!(Instant::now() < deadline, "no batch acknowledged in time");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A moment later, so that the next batch is likely on its way (each of its messages is committed on arrival).
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let batches = state["batches"].as_u64().unwrap();
    let accepted_first = state["counts"]["accepted"].as_u64().unwrap();
    assert_eq!(accepted_first, batches * BATCH, "every acknowledged row was new");
    assert_eq!(state["last_row"].as_u64().unwrap(), batches * BATCH + 1);
    let stored_at_kill = app.fact_versions().await as u64;
    assert!(stored_at_kill >= accepted_first && stored_at_kill <= accepted_first + BATCH, "{stored_at_kill}");

    // Resumed: the rows after the last acknowledged one; those the hub had committed from the batch in flight
    // come back DUPLICATE, the rest ACCEPTED.
    let mut resumed = cmd(true);
    let out = tokio::task::spawn_blocking(move || resumed.output().unwrap()).await.unwrap();
    let second = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{second}\n{}", String::from_utf8_lossy(&out.stderr));
    let (accepted_second, duplicate_second) = (accepted_in(&second), count_in(&second, "duplicate"));
    // The hub may still commit a message it was handling when the client died, so what it held right after the
    // kill is a lower bound; at most the one batch in flight can come back DUPLICATE.
    assert!(duplicate_second >= stored_at_kill - accepted_first && duplicate_second <= BATCH, "{second}");
    assert_eq!(accepted_first + duplicate_second + accepted_second, N, "{second}");
    assert_eq!(count_in(&second, "rejected") + count_in(&second, "stale") + count_in(&second, "new_version"), 0);
    assert_eq!(app.fact_versions().await as u64, N);
    eprintln!(
        "100k push killed after {batches} batches ({} rows of the batch in flight already stored), resumed: {:.1} s",
        duplicate_second,
        t.elapsed().as_secs_f64()
    );
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn export_snapshot_writes_the_quarter_summary_and_push_refuses_it() {
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    // In force on 2023-06-30: 3 rural dibao persons in 环县, households 户1 (2) and 户2 (1), 442.00 + 442.00 +
    // 89.00 = 973.00 a month; one tekun person in 镇原县 (605.00); a fourth 环县 dibao row ended on 2023-06-01.
    let mut lines = vec![HEADER.to_owned()];
    lines.push(rural("S-1", &id("621022", (1960, 1, 1), 1), 2, "442.00", "户1"));
    lines.push(rural("S-2", &id("621022", (1960, 1, 2), 2), 2, "442.00", "户1"));
    lines.push(rural("S-3", &id("621022", (1960, 1, 3), 3), 3, "89.00", "户2"));
    lines.push(
        rural("S-4", &id("621022", (1960, 1, 4), 4), 3, "89.00", "户3")
            .replace(",2023-01-01,,", ",2023-01-01,2023-06-01,"),
    );
    lines.push(format!(
        "assistance,S-5,1,{},621027101201,2023-01-01,,TEKUN,RURAL,,,DISPERSED,,605.00,ACTIVE",
        id("621027", (1940, 5, 5), 5)
    ));
    let file = dir.path().join("q2.csv");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert_eq!(push(&push_args(&conn, &file)).await.unwrap().files[0].counts, counts(5, 0, 0, 0, 0));
    let mut civil = app.client("civil_affairs").await;
    let snap = civil
        .coordination
        .create_snapshot(doudi::grpc::pb::CreateSnapshotRequest { quarter: "2023Q2".into() })
        .await
        .unwrap()
        .into_inner();

    let out = dir.path().join("q2");
    let mut args = export_args(&conn, &out, FileFormat::Csv);
    args.as_of = None;
    args.snapshot = Some("2023Q2".into());
    let m = export(&args).await.unwrap();
    let info = m.snapshot.as_ref().unwrap();
    assert_eq!((info.quarter.as_str(), m.as_of.as_str()), ("2023Q2", "2023-06-30"));
    assert_eq!(info.content_hash, snap.content_hash);
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "summary-2023Q2.json",
            "summary-2023Q2.csv",
            "summary-2023Q2.md",
            "summary-2023Q2.html",
            "summary-2023Q2.xlsx",
            // The header and the countersignatures, for `doudi snapshot verify --offline` (docs/countersign.md).
            "snapshot-2023Q2.json",
            "signatures-2023Q2.json"
        ]
    );
    for f in &m.files {
        let bytes = std::fs::read(out.join(&f.name)).unwrap();
        assert_eq!(f.sha256, doudi::client::manifest::sha256_hex(&bytes), "{}", f.name);
        assert_eq!(f.rows, None);
    }
    let summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_slice(&std::fs::read(out.join("summary-2023Q2.json")).unwrap()).unwrap();
    assert_eq!(summary.headline.dibao_persons, 3);
    assert_eq!(summary.headline.tekun_persons, 1);
    assert_eq!(summary.headline.monthly_benefit_total.to_string(), "1578.00");
    let huan = summary.by_county_program.iter().find(|r| r.county_code == "621022" && r.program == "DIBAO").unwrap();
    assert_eq!(huan.persons, doudi::domain::summary::Count::Value(3));
    assert_eq!(huan.households, doudi::domain::summary::Count::Value(2));
    assert_eq!(huan.monthly_benefit.to_string(), "973.00");

    let e = push(&push_args(&conn, &out)).await.unwrap_err().to_string();
    assert!(e.contains("snapshot's aggregates") && e.contains("nothing to push"), "{e}");
    app.stop().await;
}

fn watch_args(conn: &ConnectArgs, from: Option<i64>, json: bool, limit: u64) -> doudi::client::watch::WatchArgs {
    doudi::client::watch::WatchArgs {
        connect: conn.clone(),
        from,
        kinds: Vec::new(),
        division: None,
        purpose: "cli test".into(),
        json,
        limit: Some(limit),
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn watch_prints_one_line_per_change_and_resumes_from_a_cursor() {
    use doudi::grpc::pb;
    let app = spawn_app().await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let (a, b) = (id("621022", (1960, 1, 1), 1), id("621022", (1961, 1, 1), 2));
    let mut c = app.client("civil_affairs").await;
    for (fid, p) in [("W-A", &a), ("W-B", &b)] {
        let f = crate::support::with(crate::support::base(fid, p, "621022101203"), crate::support::rural_dibao());
        c.exchange.push_facts(pb::PushFactsRequest { facts: vec![f] }).await.unwrap();
    }
    // JSON from the start: the opening heartbeat, then cursors 1 and 2.
    let mut out = Vec::new();
    let end = doudi::client::watch::watch(&watch_args(&conn, Some(0), true, 2), &mut out).await.unwrap();
    assert_eq!(end, doudi::client::watch::WatchEnd { cursor: Some(2), changes: 2 });
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], serde_json::json!({"cursor": 0, "heartbeat": true}));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["cursor"], 1);
    assert_eq!(lines[1]["type"], "CREATED");
    assert_eq!(lines[1]["fact"]["fact_id"], "W-A");
    assert_eq!(lines[1]["fact"]["monthly_benefit"], "442.00");
    assert_eq!(lines[2]["id_number_masked"], format!("{}********{}", &b[..6], &b[14..]));
    // Text, resuming after cursor 1: only W-B.
    let mut out = Vec::new();
    let end = doudi::client::watch::watch(&watch_args(&conn, Some(1), false, 1), &mut out).await.unwrap();
    assert_eq!(end.cursor, Some(2));
    let text = String::from_utf8(out).unwrap();
    let masked_b = format!("{}********{}", &b[..6], &b[14..]);
    assert!(
        text.starts_with(&format!("2 CREATED civil_affairs assistance {masked_b} W-B v1 621022101203 2023-01-01–")),
        "{text}"
    );
    assert!(text.contains("program=DIBAO") && text.contains("monthly_benefit=442.00"), "{text}");
    assert_eq!(text.lines().count(), 1);
    assert!(!text.contains(&b), "text lines carry the masked ID only: {text}");
    app.stop().await;
}

/// A refusal that waiting cannot cure is not retried (docs/errors.md): a message over the hub's size limit is
/// RESOURCE_EXHAUSTED without RetryInfo, so `push` stops at once. Retrying as before (five times, 1 s apart without a
/// hint) would take at least 5 s.
#[apply(e2e!)]
#[tokio::test]
async fn push_stops_at_once_on_a_refusal_without_retry_info() {
    // 2,000 bytes allowed; 40 facts are about 100 bytes each in protobuf, so one message of them is over the limit.
    let app = crate::support::spawn_app_with(|c| c.max_message_bytes = 2_000).await;
    let certs = certs_dir(&app, "civil_affairs");
    let conn = ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs");
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = std::iter::once(HEADER.to_owned())
        .chain((1..=40).map(|s| rural(&format!("BIG-{s}"), &id("621022", (1986, 1, 1), s), 2, "442.00", "HH-1")))
        .collect();
    let file = dir.path().join("big.csv");
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();
    let started = Instant::now();
    let e = push(&push_args(&conn, &file)).await.unwrap_err();
    let took = started.elapsed();
    assert!(format!("{e:#}").contains("too large"), "{e:#}");
    assert!(took < std::time::Duration::from_secs(4), "retried: {took:?}");
    assert_eq!(app.fact_versions().await, 0);
    app.stop().await;
}
