//! Nothing audited is lost (issue 17 item 5): the audit events of reads are committed in groups (`store::group`),
//! and a read is answered only once the transaction holding its event has committed. Each test checks a promise that
//! must hold whatever the grouping turns out to be: every answered read has its event, also after the hub is killed
//! with SIGKILL in the middle of a storm of reads; concurrent reads leave exactly one event each; concurrent reads do
//! share transactions; and a read cancelled by its client never makes another reader's call fail.
//!
//! Every read carries its own purpose (`r{reader} k{n}`, its reader's n-th read; `s{round} …` in a storm of the kill
//! test), recorded in its event, so that each answered read is found by the event an auditor lists for the person
//! (ListAccessEvents by ID number). Expected values are the reads each test makes, worked out by hand in the comments
//! beside them, never the hub's own counts.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use rand::{Rng as _, SeedableRng as _};
use tonic::Code;

use crate::support::*;

pub(crate) const XIFENG: &str = "621002"; // 西峰区
const GET_RECIPIENT: &str = "/doudi.v1.RecipientExchange/GetRecipient";
/// Every fact pushed here is valid from 2023-01-01: a read as of `IN_FORCE` finds it (OK), one as of `BEFORE` finds
/// nothing (NOT_FOUND, audited as well).
pub(crate) const IN_FORCE: &str = "2024-01-01";
pub(crate) const BEFORE: &str = "2022-06-30";

/// Person `i`: a distinct ID number for each `i`.
pub(crate) fn person(i: usize) -> String {
    id(XIFENG, (1940 + (i / 336) as i32, 1 + (i / 28 % 12) as u32, 1 + (i % 28) as u32), (i % 997) as u16)
}

/// A person never pushed: every read of them is NOT_FOUND.
fn stranger() -> String {
    id("621022", (1975, 5, 5), 5)
}

/// Push one rural dibao fact (valid from 2023-01-01) for each of persons `0..n`, in one PushFacts: all ACCEPTED.
pub(crate) async fn push_persons(c: &mut Clients, n: usize) {
    let facts = (0..n).map(|i| with(base(&format!("AD-{i}"), &person(i), XIFENG), rural_dibao())).collect();
    let r = push(c, facts).await.unwrap();
    assert_eq!(r.counts.unwrap().accepted, n as u64);
}

pub(crate) async fn read(
    c: &mut Clients,
    id_number: &str,
    as_of: &str,
    purpose: &str,
) -> Result<pb::Recipient, tonic::Status> {
    c.exchange
        .get_recipient(pb::GetRecipientRequest {
            id_number: id_number.into(),
            as_of: as_of.into(),
            purpose: purpose.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// The outcome a read's event records: "OK" for an answer, "NOT_FOUND" for that status.
pub(crate) fn outcome_of(r: &Result<pb::Recipient, tonic::Status>) -> Option<&'static str> {
    match r {
        Ok(_) => Some("OK"),
        Err(s) if s.code() == Code::NotFound => Some("NOT_FOUND"),
        Err(_) => None,
    }
}

/// The GetRecipient events that touched `id_number`, as (purpose, outcome), sorted: what an auditor lists for the
/// person (ListAccessEvents by ID number, every page). The listing is itself audited (its own method, left out).
pub(crate) async fn reads_of(auditor: &mut Clients, id_number: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = auditor
            .audit
            .list_access_events(pb::ListAccessEventsRequest {
                id_number: id_number.into(),
                purpose: "durability check".into(),
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.events.into_iter().filter(|e| e.method == GET_RECIPIENT).map(|e| (e.purpose, e.outcome)));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    out.sort();
    out
}

/// Every event of the chain (ListAccessEvents without filters, every page), oldest first.
async fn all_events(auditor: &mut Clients) -> Vec<pb::AccessEvent> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = auditor
            .audit
            .list_access_events(pb::ListAccessEventsRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.events);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    out.reverse();
    out
}

pub(crate) async fn verify(c: &mut Clients) -> pb::VerifyAuditChainResponse {
    let v = c.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    assert!(v.valid, "audit chain: {v:?}");
    v
}

/// A `doudi serve` process of this build on `database_url`, with the PKI of `certs` (`doudi certs init`) and the
/// data key `key`: a hub that can be killed with SIGKILL. Killed when dropped, too.
pub(crate) struct HubProcess {
    child: std::process::Child,
    pub(crate) server: String,
}

impl HubProcess {
    /// Start the hub and wait (up to 120 s) for its "doudi serving" log line, which names the bound address.
    pub(crate) fn start(certs: &Path, database_url: &str, key: &str) -> HubProcess {
        HubProcess::start_with_env(certs, database_url, key, &[])
    }

    /// `start`, with `env` added to the hub's environment (e.g. an `LD_PRELOAD`).
    pub(crate) fn start_with_env(certs: &Path, database_url: &str, key: &str, env: &[(&str, &OsStr)]) -> HubProcess {
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(["--log-json", "serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
            .arg("--certs-dir")
            .arg(certs)
            .env_remove("DOUDI_CONFIG")
            .env("DOUDI_DATA_KEY", key)
            .env("DOUDI_RATE_PER_AGENCY", "0")
            .env("DOUDI_CRL_POLL_SECS", "0")
            .env("DOUDI_METRICS_LISTEN", "")
            .env("RUST_LOG", "warn,sqlx=error,doudi::server=info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let rx = doudi::tools::bench::hub::serving_address(stderr);
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            panic!("the hub did not start serving within 120 s ({:?})", child.wait());
        };
        HubProcess { child, server: format!("https://localhost:{}", addr.port()) }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub(crate) fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Readers of each storm in the kill test.
const STORM_READERS: usize = 32;

/// One answered read of a storm: in round `round`, reader `reader`'s `k`-th read, of person `person`, and the
/// outcome it got.
struct Answered {
    round: usize,
    reader: usize,
    k: usize,
    person: usize,
    outcome: &'static str,
}

/// One storm on the hub at `server`, killed with SIGKILL by `kill` once at least `until` reads were answered: 32
/// readers (one connection each) read as fast as they are answered, reader r persons 2r and 2r+1 in turn, every fourth
/// read as of a day before their facts (NOT_FOUND), each read with purpose `s{round} r{r} k{k}` (its k-th read). A
/// reader stops at its first failure, which must come after the kill. Returns the reads answered.
async fn storm_until_killed(
    server: &str,
    me: &ClientIdentity,
    round: usize,
    until: usize,
    kill: impl FnOnce(),
) -> Vec<Answered> {
    let answered = Arc::new(Mutex::new(Vec::<Answered>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..STORM_READERS {
        let mut c = Clients::new(connect(server, "localhost", me).await.unwrap(), 1 << 26);
        let (answered, count, killed) = (answered.clone(), count.clone(), killed.clone());
        readers.push(tokio::spawn(async move {
            for k in 0.. {
                let p = 2 * r + k % 2;
                let (as_of, expected) = if k % 4 == 3 { (BEFORE, "NOT_FOUND") } else { (IN_FORCE, "OK") };
                let got = read(&mut c, &person(p), as_of, &format!("s{round} r{r} k{k}")).await;
                let Some(outcome) = outcome_of(&got) else {
                    // The kill: the call failed without an answer.
                    let e = got.unwrap_err();
                    assert!(killed.load(Ordering::SeqCst), "round {round}: reader {r}'s read {k} failed: {e:?}");
                    return;
                };
                assert_eq!(outcome, expected, "round {round}: reader {r}'s read {k} of person {p} as of {as_of}");
                answered.lock().unwrap().push(Answered { round, reader: r, k, person: p, outcome });
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::SeqCst) < until {
        assert!(Instant::now() < deadline, "round {round}: fewer than {until} reads answered in 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    kill();
    for r in readers {
        tokio::time::timeout(Duration::from_secs(60), r).await.expect("a reader hung after the kill").unwrap();
    }
    std::mem::take(&mut *answered.lock().unwrap())
}

/// 64 persons pushed, then three rounds: a `doudi serve` process on the same database (same data key) takes a storm
/// of reads (`storm_until_killed`) and is killed with SIGKILL once at least 300 of them were answered. Then a hub is
/// started once more on that database, and an auditor lists each person's reads:
///
/// - every answered read (OK or NOT_FOUND) has its event, with that outcome;
/// - no read has two events (each purpose once);
/// - the only events of reads not answered are those in flight at a kill: at most one per reader and round, its next
///   read (`k` = the number of its answered reads in that round);
/// - the chain verifies.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_read_has_its_event_after_kill_9_mid_storm() {
    const PERSONS: usize = 2 * STORM_READERS;
    const ROUNDS: usize = 3;
    doudi::server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    doudi::security::certs::init(&certs, doudi::security::certs::DEFAULT_TRUST_DOMAIN, true).unwrap();
    let me = ClientIdentity::from_dir(&certs, "civil_affairs").unwrap();
    let key = doudi::security::crypto::Keys::generate_base64();
    let url = test_database_url(dir.path()).await;
    let mut answered = Vec::new();
    for round in 0..ROUNDS {
        let (c, u, k) = (certs.clone(), url.clone(), key.clone());
        let mut hub = tokio::task::spawn_blocking(move || HubProcess::start(&c, &u, &k)).await.unwrap();
        if round == 0 {
            let mut c = Clients::new(connect(&hub.server, "localhost", &me).await.unwrap(), 1 << 26);
            push_persons(&mut c, PERSONS).await;
        }
        let server = hub.server.clone();
        let got = storm_until_killed(&server, &me, round, 300, || hub.kill_9()).await;
        eprintln!("round {round}: {} reads answered before the kill", got.len());
        answered.extend(got);
    }

    // The hub again, on the same database and data key (an in-process one; the PKI is its own).
    let app = spawn_app_on(Some(url), |c| c.data_key = Some(key.into()), |_, _| {}).await;
    let mut auditor = app.client("civil_affairs").await;
    // Each reader's answered reads in a round are its reads 0..n (it stopped at its first failure); its read n may
    // have been in flight at the kill.
    let mut answered_by_reader = [[0usize; STORM_READERS]; ROUNDS];
    for a in &answered {
        answered_by_reader[a.round][a.reader] += 1;
    }
    let mut in_flight_events = 0;
    for p in 0..PERSONS {
        let events = reads_of(&mut auditor, &person(p)).await;
        let mut by_purpose: HashMap<&str, &str> = HashMap::new();
        for (purpose, outcome) in &events {
            let fresh = by_purpose.insert(purpose.as_str(), outcome.as_str()).is_none();
            assert!(fresh, "person {p}: read {purpose} has two events");
        }
        for a in answered.iter().filter(|a| a.person == p) {
            let purpose = format!("s{} r{} k{}", a.round, a.reader, a.k);
            assert_eq!(
                by_purpose.remove(purpose.as_str()),
                Some(a.outcome),
                "person {p}: the answered read {purpose} ({}) has no event with its outcome",
                a.outcome
            );
        }
        // Left: events of reads whose answer never arrived. Reader p / 2 reads person p in its reads k with
        // k % 2 = p % 2.
        let r = p / 2;
        let in_flight: Vec<String> = (0..ROUNDS)
            .map(|s| answered_by_reader[s][r])
            .enumerate()
            .filter(|&(_, k)| k % 2 == p % 2)
            .map(|(s, k)| format!("s{s} r{r} k{k}"))
            .collect();
        for purpose in by_purpose.keys() {
            assert!(in_flight.iter().any(|f| f == purpose), "person {p}: an event of read {purpose}, never made");
            in_flight_events += 1;
        }
    }
    eprintln!(
        "{} reads answered in {ROUNDS} rounds, all audited; {in_flight_events} events of reads in flight at the kills",
        answered.len()
    );
    verify(&mut auditor).await;
    app.stop().await;
}

/// 65 persons pushed; 32 clients (one connection each) read at once, client c its own persons 2c (3 + c % 4 times)
/// and 2c+1 (2 + c % 3 times), person 64 (shared by all) once, and a person never pushed once (NOT_FOUND), each read
/// with its own purpose. Reads: Σ(3 + c % 4) = 96 + 48 = 144, Σ(2 + c % 3) = 64 + 31 = 95 (c % 3 sums to 30 over
/// c < 30, plus 0 and 1), 32 of person 64, 32 NOT_FOUND: 303. Then each person's events are exactly its reads (same
/// purposes and outcomes, none lost, none twice), and the chain holds 1 + 303 events (the push's, the reads') and
/// verifies.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_leave_exactly_one_event_each() {
    const CLIENTS: usize = 32;
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let mut ca = app.client("civil_affairs").await;
    push_persons(&mut ca, 2 * CLIENTS + 1).await;
    let shared = person(2 * CLIENTS);
    // Each client's reads, interleaved: (ID number, outcome expected, purpose).
    let plan = |c: usize| -> Vec<(String, &'static str, String)> {
        let mut own: Vec<String> = Vec::new();
        for j in 0..(3 + c % 4).max(2 + c % 3) {
            if j < 3 + c % 4 {
                own.push(person(2 * c));
            }
            if j < 2 + c % 3 {
                own.push(person(2 * c + 1));
            }
        }
        own.insert(1, shared.clone());
        own.push(stranger());
        own.into_iter()
            .enumerate()
            .map(|(k, id)| {
                let outcome = if id == stranger() { "NOT_FOUND" } else { "OK" };
                (id, outcome, format!("r{c} k{k}"))
            })
            .collect()
    };
    let mut expected: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let reads = plan(c);
        for (id, outcome, purpose) in &reads {
            expected.entry(id.clone()).or_default().push((purpose.clone(), (*outcome).to_owned()));
        }
        let mut client = app.client("civil_affairs").await;
        tasks.push(tokio::spawn(async move {
            for (id, outcome, purpose) in reads {
                let got = read(&mut client, &id, IN_FORCE, &purpose).await;
                assert_eq!(outcome_of(&got), Some(outcome), "{purpose}: {got:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 303, "the plan is the one worked out above");
    let mut auditor = app.client("civil_affairs").await;
    assert_eq!(verify(&mut auditor).await.events_checked, 1 + 303);
    assert_eq!(expected.len(), 2 * CLIENTS + 2);
    for (id, mut reads) in expected {
        reads.sort();
        assert_eq!(reads_of(&mut auditor, &id).await, reads, "the events of {id}");
    }
    app.stop().await;
}

/// Concurrent reads share transactions: 32 clients each read their own person 10 times as fast as they are answered
/// (320 reads). The events of one transaction carry one time (taken once, under the writer lock, and a commit with
/// its fsync lies between two transactions), so events sharing a time are one group. Whatever the grouping: the 320
/// GetRecipient events are there; each group is a run of consecutive seqs; no group holds more than 32 events (at
/// most 32 reads are in flight at once, one per client); and at least one group holds two or more (one transaction
/// per read would mean no group was ever formed).
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_transactions() {
    const CLIENTS: usize = 32;
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let mut ca = app.client("civil_affairs").await;
    push_persons(&mut ca, CLIENTS).await;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = app.client("civil_affairs").await;
        tasks.push(tokio::spawn(async move {
            for k in 0..10 {
                read(&mut client, &person(c), IN_FORCE, &format!("r{c} k{k}")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut auditor = app.client("civil_affairs").await;
    let events: Vec<pb::AccessEvent> =
        all_events(&mut auditor).await.into_iter().filter(|e| e.method == GET_RECIPIENT).collect();
    assert_eq!(events.len(), 320);
    let mut groups: BTreeMap<(i64, i32), Vec<i64>> = BTreeMap::new();
    for e in &events {
        let at = e.at.unwrap();
        groups.entry((at.seconds, at.nanos)).or_default().push(e.seq);
    }
    let sizes: Vec<usize> = groups.values().map(Vec::len).collect();
    eprintln!("320 reads' events in {} transactions; sizes {sizes:?}", groups.len());
    for seqs in groups.values() {
        let run: Vec<i64> = (seqs[0]..seqs[0] + seqs.len() as i64).collect();
        assert_eq!(*seqs, run, "a group's events are consecutive in the chain");
    }
    assert!(sizes.iter().all(|&n| n <= CLIENTS), "a group larger than the reads in flight: {sizes:?}");
    assert!(sizes.iter().any(|&n| n >= 2), "every read's event was committed alone");
    verify(&mut auditor).await;
    app.stop().await;
}

/// 32 clients (one connection each) make 13 reads each of their own person (416 reads), and about half of them,
/// chosen at random (seeded), are cancelled by their client after 0 to 8 ms: some before the hub sees them, some while
/// their event waits for or leads a group commit. Every read not cancelled is answered (none fails, none hangs: 30 s
/// each), and so is every cancelled one that was answered before its deadline. Per person, the events lie between
/// the reads answered and the reads made: every answered read has its event, no read has two, and no event names a
/// read not made (a cancelled read's event may or may not be written). Then a read of a 33rd person is answered and
/// has exactly its one event, and the chain verifies.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_read_never_fails_another_readers_call() {
    const CLIENTS: usize = 32;
    const READS: usize = 13;
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let mut ca = app.client("civil_affairs").await;
    push_persons(&mut ca, CLIENTS + 1).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = app.client("civil_affairs").await;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1_700 + c as u64);
            let (mut answered, mut cancelled, mut failures) = (Vec::new(), 0usize, Vec::new());
            for k in 0..READS {
                let purpose = format!("r{c} k{k}");
                let cancel = rng.random_bool(0.5);
                let wait =
                    if cancel { Duration::from_micros(rng.random_range(0..=8_000)) } else { Duration::from_secs(30) };
                match tokio::time::timeout(wait, read(&mut client, &person(c), IN_FORCE, &purpose)).await {
                    Ok(Ok(_)) => answered.push(purpose),
                    Ok(Err(e)) => failures.push(format!("{purpose} failed: {e:?}")),
                    Err(_) if cancel => cancelled += 1,
                    Err(_) => failures.push(format!("{purpose} not answered in 30 s")),
                }
            }
            (answered, cancelled, failures)
        }));
    }
    let mut answered = Vec::new();
    let mut cancelled = 0;
    let mut failures = Vec::new();
    for t in tasks {
        let (a, c, f) = t.await.unwrap();
        answered.push(a);
        cancelled += c;
        failures.extend(f);
    }
    eprintln!(
        "{} reads answered, {cancelled} cancelled, in {:?}",
        answered.iter().map(Vec::len).sum::<usize>(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(cancelled > 0, "no read was cancelled: the test tested nothing");
    let r = tokio::time::timeout(Duration::from_secs(10), read(&mut ca, &person(CLIENTS), IN_FORCE, "after")).await;
    r.expect("a read after the storm was not answered in 10 s").unwrap();
    let mut auditor = app.client("civil_affairs").await;
    let mut cancelled_with_event = 0;
    for (c, answered) in answered.iter().enumerate() {
        let events: Vec<String> = reads_of(&mut auditor, &person(c)).await.into_iter().map(|(p, _)| p).collect();
        let made: Vec<String> = (0..READS).map(|k| format!("r{c} k{k}")).collect();
        let mut distinct = events.clone();
        distinct.dedup(); // sorted
        assert_eq!(distinct, events, "person {c}: a read with two events");
        assert!(events.iter().all(|e| made.contains(e)), "person {c}: an event of a read never made: {events:?}");
        assert!(answered.iter().all(|a| events.contains(a)), "person {c}: an answered read without its event");
        cancelled_with_event += events.len() - answered.len();
    }
    eprintln!("{cancelled_with_event} cancelled reads had their event written (cancelled after it was queued)");
    assert_eq!(reads_of(&mut auditor, &person(CLIENTS)).await, [("after".to_owned(), "OK".to_owned())]);
    verify(&mut auditor).await;
    app.stop().await;
}
