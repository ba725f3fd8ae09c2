//! `doudi keys rotate`: every stored ID number re-encrypted under a new data key, interrupted half-way and rerun,
//! with no person lost or duplicated; the hub then serves with the new key and refuses the old one.

use doudi::grpc::pb;
use doudi::security::crypto::Keys;
use macro_rules_attribute::apply;

use crate::support::*;

fn rotate(db: &str, old: &str, new: &str, extra: &[&str]) -> std::process::Output {
    // Break-glass: the two-person approval of a rotation is tests/api/admin.rs's.
    let mut args = vec!["keys", "rotate", "--database-url", db, "--batch", "2", "--without-approval", "test drill"];
    args.extend_from_slice(extra);
    std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(&args)
        .env("DOUDI_DATA_KEY", old)
        .env("DOUDI_NEW_DATA_KEY", new)
        .env_remove("DOUDI_CONFIG")
        // The suite's own variable (DOUDI_* is configuration to the command, which refuses unknown keys).
        .env_remove("DOUDI_TEST_DATABASE_URL")
        .output()
        .unwrap()
}

#[apply(e2e!)]
#[tokio::test]
async fn rotating_the_data_key_keeps_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database_url(dir.path()).await;
    let (k1, k2) = (Keys::generate_base64(), Keys::generate_base64());
    let persons: Vec<String> = (0..5u16).map(|i| id("621022", (1960 + i as i32, 1, 1), 10 + i)).collect();

    let app = spawn_app_with(|c| {
        c.database_url = db.clone();
        c.data_key = Some(k1.clone().into());
    })
    .await;
    let mut civil = app.client("civil_affairs").await;
    let facts = persons
        .iter()
        .enumerate()
        .map(|(i, p)| with(base(&format!("R-{i}"), p, "621022101203"), rural_dibao()))
        .collect();
    push(&mut civil, facts).await.unwrap();
    app.stop().await;

    // Interrupted after one batch of 2, then run again to the end; a third run has nothing left.
    let out = rotate(&db, &k1, &k2, &["--max-batches", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("2 ID numbers re-encrypted; stopped"));
    let out = rotate(&db, &k1, &k2, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("3 ID numbers re-encrypted; the database now uses"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = rotate(&db, &k1, &k2, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already uses the new data key"));
    // The finished rotation left none of its working rows behind (`rotation_%` in hub_meta).
    let store = doudi::store::Store::open(&db).await.unwrap();
    for name in ["rotation_target_check", "rotation_lookup_wrapped", "rotation_generation"] {
        assert_eq!(store.meta(name).await, None, "{name}");
    }
    assert_eq!(store.meta("key_generation").await, Some(b"2".to_vec()), "one rotation: generation 1 → 2");
    store.close().await;
    // The old key no longer opens the database for a second rotation.
    let out = rotate(&db, &k1, &Keys::generate_base64(), &[]);
    assert!(!out.status.success());

    // The hub serves with the new key: every person found under the same person key, read back in clear, once.
    let app = spawn_app_with(|c| {
        c.database_url = db.clone();
        c.data_key = Some(k2.clone().into());
    })
    .await;
    let mut mi = app.client("medical_insurance").await;
    for p in &persons {
        let r = get(&mut mi, p, "2023-06-30").await.unwrap();
        assert_eq!(&r.id_number, p);
    }
    let mut civil = app.client("civil_affairs").await;
    let list = civil
        .exchange
        .list_recipients(pb::ListRecipientsRequest { as_of: "2023-06-30".into(), page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut listed: Vec<String> = list.recipients.iter().map(|r| r.id_number.clone()).collect();
    listed.sort();
    let mut expected = persons.clone();
    expected.sort();
    assert_eq!(listed, expected, "no one lost or duplicated");
    // Pushing again under the new key finds the same persons (DUPLICATE, not new persons).
    let again = persons
        .iter()
        .enumerate()
        .map(|(i, p)| with(base(&format!("R-{i}"), p, "621022101203"), rural_dibao()))
        .collect();
    let r = push(&mut civil, again).await.unwrap();
    assert!(r.results.iter().all(|x| outcome(x) == pb::FactOutcome::Duplicate));
    app.stop().await;

    // And the key check that `serve` runs before serving now refuses the old key and accepts the new one.
    let store = doudi::store::Store::open(&db).await.unwrap();
    assert!(!store.verify_key_check(&Keys::from_base64(&k1).unwrap().check_value()).await.unwrap());
    assert!(store.verify_key_check(&Keys::from_base64(&k2).unwrap().check_value()).await.unwrap());
    store.close().await;
}

/// The national-algorithm suite end to end (SM4-GCM at rest, HMAC-SM3 person keys): push, read back, and the
/// database refuses the same data key under the default suite.
#[apply(e2e!)]
#[tokio::test]
async fn the_sm_suite_serves_and_is_fixed_per_database() {
    use doudi::security::crypto::CryptoSuite;
    let dir = tempfile::tempdir().unwrap();
    let db = test_database_url(dir.path()).await;
    let key = Keys::generate_base64();
    let app = spawn_app_with(|c| {
        c.database_url = db.clone();
        c.data_key = Some(key.clone().into());
        c.crypto_suite = CryptoSuite::Sm;
    })
    .await;
    let person = id("621022", (1975, 5, 5), 9);
    let mut civil = app.client("civil_affairs").await;
    push(&mut civil, vec![with(base("SM-1", &person, "621022101203"), rural_dibao())]).await.unwrap();
    let mut mi = app.client("medical_insurance").await;
    assert_eq!(get(&mut mi, &person, "2023-06-30").await.unwrap().id_number, person);
    app.stop().await;
    let store = doudi::store::Store::open(&db).await.unwrap();
    let sm = Keys::from_base64_with(&key, CryptoSuite::Sm).unwrap();
    let aes = Keys::from_base64_with(&key, CryptoSuite::Aes).unwrap();
    assert!(store.verify_key_check(&sm.check_value()).await.unwrap());
    assert!(!store.verify_key_check(&aes.check_value()).await.unwrap());
    // The stored cipher opens under SM4-GCM with the HMAC-SM3 person key.
    let k = sm.person_key(&person.parse().unwrap());
    let cipher = store.person_cipher(&k).await.unwrap().expect("stored under the SM3 person key");
    assert_eq!(sm.decrypt(&cipher, &k).unwrap().as_str(), person);
    store.close().await;
}
