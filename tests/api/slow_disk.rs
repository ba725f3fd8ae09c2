//! Nothing audited is lost on a slow disk (issue 17 item 5): with every `fsync` of the hub delayed, reads and writes
//! take longer, but every answered read still has its event and every acknowledged push its facts, also after the hub
//! is killed with SIGKILL in the middle of the load. SQLite only (the hub's own database file; `tests/api_pg` leaves
//! this file out): the disk is slowed by an `LD_PRELOAD` shim, compiled here at run time with `cc`, that sleeps
//! `FSYNC_DELAY_MS` before each `fsync` and `fdatasync` of the `doudi serve` process and then calls the real one.
//!
//! Expected values are what the test itself did (the reads answered, the pushes acknowledged), never the hub's counts.
//! No timing is asserted except lower bounds that the shim guarantees (a call that commits cannot be quicker than the
//! fsync it waits for).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doudi::client::{ClientIdentity, Clients, connect};

use crate::audit_durability::{
    BEFORE, HubProcess, IN_FORCE, XIFENG, outcome_of, person, push_persons, read, reads_of, verify,
};
use crate::support::*;

/// The delay the shim adds to every fsync of the hub.
const DELAY_MS: u64 = 20;
/// Concurrent readers, one connection each; reader r reads persons 2r and 2r+1.
const READERS: usize = 32;
const PERSONS: usize = 2 * READERS;
/// The storm goes on until at least this many reads were answered and this many pushes acknowledged.
const MIN_READS: usize = 300;
const MIN_PUSHES: usize = 20;

/// The `LD_PRELOAD` shim: `fsync` and `fdatasync` sleep `FSYNC_DELAY_MS` milliseconds, then call the real function
/// (the next definition after this library, `dlsym(RTLD_NEXT, …)`).
const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

static void fsync_delay(void) {
    const char *s = getenv("FSYNC_DELAY_MS");
    long ms = s ? atol(s) : 0;
    if (ms <= 0) return;
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    int saved = errno;
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {}
    errno = saved;
}

int fsync(int fd) {
    int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    fsync_delay();
    return real(fd);
}

int fdatasync(int fd) {
    int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "fdatasync");
    fsync_delay();
    return real(fd);
}
"#;

/// Compile the shim into `dir/fsync_delay.so` with `cc` (present wherever Rust builds). Panics, saying why, when
/// `cc` is missing or fails: the test must not pass without its slow disk.
fn compile_shim(dir: &Path) -> PathBuf {
    let src = dir.join("fsync_delay.c");
    let so = dir.join("fsync_delay.so");
    std::fs::write(&src, SHIM).unwrap();
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "this test needs a C compiler named `cc` on PATH to build its LD_PRELOAD fsync shim ({e}); \
             install one (e.g. gcc or clang)"
        ),
        Err(e) => panic!("running `cc` to build the fsync shim: {e}"),
        Ok(o) if !o.status.success() => {
            panic!("`cc` failed to build the fsync shim ({}): {}", o.status, String::from_utf8_lossy(&o.stderr))
        }
        Ok(_) => so,
    }
}

/// One answered read: its person, purpose and outcome.
struct Answered {
    person: usize,
    purpose: String,
    outcome: &'static str,
}

/// A `doudi serve` process on a fresh SQLite database with every fsync delayed by 20 ms (the shim above):
///
/// (a) the shim is in effect: a PushFacts of 64 persons, then each of 5 reads one after another, takes at least
///     20 ms (each commits, and a commit waits for an fsync);
/// (b) 32 readers (one connection each; reader r reads persons 2r and 2r+1 in turn, every fourth read as of a day
///     before their facts: NOT_FOUND) and one writer (its own connection; push j is one fact, `SD-j`, of person
///     64 + j) go as fast as they are answered, each call with its own purpose, until at least 300 reads were
///     answered and 20 pushes acknowledged; then the hub is killed with SIGKILL. No call fails before the kill, and
///     every read gets the outcome its date calls for and every push is ACCEPTED.
///
/// Then a hub is started again on that database, without the shim, and:
/// - every answered read (the 5 of (a), and those of the storm) has exactly one event, with its outcome;
/// - the only other events of reads are of those in flight at the kill: at most one per reader, its next read;
/// - every acknowledged push's fact is there (GetRecipient of its person finds `SD-j`);
/// - the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_raises_latency_but_loses_nothing() {
    let delay = Duration::from_millis(DELAY_MS);
    doudi::server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let shim = compile_shim(dir.path());
    let certs = dir.path().join("certs");
    doudi::security::certs::init(&certs, doudi::security::certs::DEFAULT_TRUST_DOMAIN, true).unwrap();
    let me = ClientIdentity::from_dir(&certs, "civil_affairs").unwrap();
    let key = doudi::security::crypto::Keys::generate_base64();
    let url = test_database_url(dir.path()).await;
    assert!(url.starts_with("sqlite:"), "a test of the hub's own SQLite file: {url}");

    let mut hub = {
        let (c, u, k, shim) = (certs.clone(), url.clone(), key.clone(), shim.clone());
        tokio::task::spawn_blocking(move || {
            let ms = DELAY_MS.to_string();
            let env = [("LD_PRELOAD", shim.as_os_str()), ("FSYNC_DELAY_MS", OsStr::new(&ms))];
            HubProcess::start_with_env(&c, &u, &k, &env)
        })
        .await
        .unwrap()
    };

    // (a) The shim is in effect: each call below commits, so waits for at least one delayed fsync.
    let mut c = Clients::new(connect(&hub.server, "localhost", &me).await.unwrap(), 1 << 26);
    let started = Instant::now();
    push_persons(&mut c, PERSONS).await;
    let push_took = started.elapsed();
    assert!(push_took >= delay, "a PushFacts took {push_took:?}, less than the fsync delay {delay:?}: no slow disk");
    let mut answered = Vec::new();
    for k in 0..5 {
        let purpose = format!("w k{k}");
        let started = Instant::now();
        read(&mut c, &person(k), IN_FORCE, &purpose).await.unwrap();
        let took = started.elapsed();
        assert!(took >= delay, "read {k} took {took:?}, less than the fsync delay {delay:?}: no slow disk");
        answered.push(Answered { person: k, purpose, outcome: "OK" });
    }
    eprintln!("with fsync delayed {DELAY_MS} ms: the 64-person PushFacts took {push_took:?}");

    // (b) The storm, with a writer, killed with SIGKILL.
    let storm = Arc::new(Mutex::new(Vec::<(Answered, Duration)>::new()));
    let reads = Arc::new(AtomicUsize::new(0));
    let pushes = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..READERS {
        let mut c = Clients::new(connect(&hub.server, "localhost", &me).await.unwrap(), 1 << 26);
        let (storm, reads, killed) = (storm.clone(), reads.clone(), killed.clone());
        readers.push(tokio::spawn(async move {
            for k in 0.. {
                let p = 2 * r + k % 2;
                let (as_of, expected) = if k % 4 == 3 { (BEFORE, "NOT_FOUND") } else { (IN_FORCE, "OK") };
                let purpose = format!("s r{r} k{k}");
                let started = Instant::now();
                let got = read(&mut c, &person(p), as_of, &purpose).await;
                let took = started.elapsed();
                let Some(outcome) = outcome_of(&got) else {
                    let e = got.unwrap_err();
                    assert!(killed.load(Ordering::SeqCst), "reader {r}'s read {k} failed before the kill: {e:?}");
                    return k;
                };
                assert_eq!(outcome, expected, "reader {r}'s read {k} of person {p} as of {as_of}");
                storm.lock().unwrap().push((Answered { person: p, purpose, outcome }, took));
                reads.fetch_add(1, Ordering::SeqCst);
            }
            unreachable!()
        }));
    }
    let writer = {
        let mut c = Clients::new(connect(&hub.server, "localhost", &me).await.unwrap(), 1 << 26);
        let (pushes, killed) = (pushes.clone(), killed.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut j = 0;
            loop {
                let fact = with(base(&format!("SD-{j}"), &person(PERSONS + j), XIFENG), rural_dibao());
                let started = Instant::now();
                match push(&mut c, vec![fact]).await {
                    Ok(r) => {
                        assert_eq!(r.counts.unwrap().accepted, 1, "push {j}: {:?}", r.results);
                        acknowledged.push((j, started.elapsed()));
                        pushes.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        assert!(killed.load(Ordering::SeqCst), "push {j} failed before the kill: {e:?}");
                        return acknowledged;
                    }
                }
                j += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while reads.load(Ordering::SeqCst) < MIN_READS || pushes.load(Ordering::SeqCst) < MIN_PUSHES {
        assert!(
            Instant::now() < deadline,
            "in 120 s: {} reads answered (wanted {MIN_READS}), {} pushes acknowledged (wanted {MIN_PUSHES})",
            reads.load(Ordering::SeqCst),
            pushes.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    hub.kill_9();
    let mut answered_by_reader = Vec::new();
    for r in readers {
        answered_by_reader
            .push(tokio::time::timeout(Duration::from_secs(60), r).await.expect("a reader hung").unwrap());
    }
    let acknowledged =
        tokio::time::timeout(Duration::from_secs(60), writer).await.expect("the writer hung after the kill").unwrap();
    let storm = std::mem::take(&mut *storm.lock().unwrap());
    assert_eq!(storm.len(), answered_by_reader.iter().sum::<usize>(), "each reader's reads 0..n were answered");
    let mut latencies: Vec<Duration> = storm.iter().map(|(_, t)| *t).collect();
    latencies.sort();
    let mut push_latencies: Vec<Duration> = acknowledged.iter().map(|(_, t)| *t).collect();
    push_latencies.sort();
    eprintln!(
        "storm: {} reads answered (latency median {:?}, max {:?}), {} pushes acknowledged (median {:?}, max {:?})",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap(),
        push_latencies.len(),
        push_latencies[push_latencies.len() / 2],
        push_latencies.last().unwrap()
    );
    answered.extend(storm.into_iter().map(|(a, _)| a));

    // The hub again on that database, without the shim.
    let hub = tokio::task::spawn_blocking(move || HubProcess::start(&certs, &url, &key)).await.unwrap();
    let mut auditor = Clients::new(connect(&hub.server, "localhost", &me).await.unwrap(), 1 << 26);
    let mut in_flight_events = 0;
    for p in 0..PERSONS {
        let mut by_purpose: HashMap<String, String> = HashMap::new();
        for (purpose, outcome) in reads_of(&mut auditor, &person(p)).await {
            assert!(by_purpose.insert(purpose.clone(), outcome).is_none(), "person {p}: read {purpose} has two events");
        }
        for a in answered.iter().filter(|a| a.person == p) {
            assert_eq!(
                by_purpose.remove(&a.purpose).as_deref(),
                Some(a.outcome),
                "person {p}: the answered read {} ({}) has no event with its outcome",
                a.purpose,
                a.outcome
            );
        }
        // Left: events of reads whose answer never arrived, only reader p / 2's next read when it reads person p
        // (its reads k with k % 2 = p % 2).
        let (r, n) = (p / 2, answered_by_reader[p / 2]);
        for purpose in by_purpose.keys() {
            assert!(
                n % 2 == p % 2 && *purpose == format!("s r{r} k{n}"),
                "person {p}: an event of read {purpose}, not answered and not in flight at the kill"
            );
            in_flight_events += 1;
        }
    }
    for &(j, _) in &acknowledged {
        let got = get(&mut auditor, &person(PERSONS + j), IN_FORCE).await;
        let facts: Vec<String> = got
            .unwrap_or_else(|e| panic!("acknowledged push {j}: its person not found: {e:?}"))
            .facts
            .into_iter()
            .map(|f| f.fact_id)
            .collect();
        assert_eq!(facts, [format!("SD-{j}")], "acknowledged push {j}");
    }
    eprintln!(
        "{} reads answered, all audited once; {in_flight_events} events of reads in flight at the kill; {} pushes \
         acknowledged, all stored",
        answered.len(),
        acknowledged.len()
    );
    verify(&mut auditor).await;
}
