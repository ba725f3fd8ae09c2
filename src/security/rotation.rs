//! `doudi keys rotate`: re-encrypt every stored ID number under a new data key (docs/spec/security.md), resumable.
//!
//! 1. `rotation_begin` records the target key's check value and the lookup key wrapped under the new key (the
//!    person keys stay the HMAC under the original lookup key, so no person key, fact, audit event or snapshot
//!    changes).
//! 2. Batches of persons not yet at the target generation are decrypted with the old key, checked (the ID number
//!    must still give its person key), encrypted with the new key and written with the new generation, one
//!    transaction per batch.
//! 3. `rotation_finish` switches the database to the new key in one transaction.
//!
//! Interrupted anywhere, the same command with the same two keys continues where it stopped; run again after it
//! finished, it reports that nothing is left. The hub must be stopped while it runs; afterwards it starts only with
//! the new key.

use anyhow::Context as _;

use crate::security::crypto::Keys;
use crate::store::{RotationStart, Store};

/// What a rotation run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    /// Persons re-encrypted by this run.
    pub re_encrypted: u64,
    /// The database now uses the new key.
    pub finished: bool,
    /// It already did before this run.
    pub already_done: bool,
}

/// Rotate from `old_key` (the database's current data key) to `new_key`, `batch` persons per transaction; stop after
/// `max_batches` batches if given (to test resumption).
pub async fn rotate(
    store: &Store,
    suite: crate::security::crypto::CryptoSuite,
    old_key: &str,
    new_key: &str,
    batch: usize,
    max_batches: Option<usize>,
) -> anyhow::Result<RotationReport> {
    let new_plain = Keys::from_base64_with(new_key, suite).context("new data key")?;
    if store.meta("data_key_check").await.as_deref() == Some(new_plain.check_value().as_slice()) {
        return Ok(RotationReport { re_encrypted: 0, finished: true, already_done: true });
    }
    let old = Keys::from_base64_with(old_key, suite).context("old data key")?;
    // The lookup key the person keys were made with: wrapped under the old key (after an earlier rotation), or
    // while this rotation is under way also readable under the new key.
    let old = match store.meta("lookup_key_wrapped").await {
        Some(w) => old.with_wrapped_lookup(&w).context("the old data key does not open the stored lookup key")?,
        None => old,
    };
    let new = new_plain.with_lookup_of(&old);
    let generation = match store.rotation_begin(&old.check_value(), &new.check_value(), &new.wrap_lookup()).await? {
        RotationStart::Run { generation } => generation,
        RotationStart::AlreadyDone => {
            return Ok(RotationReport { re_encrypted: 0, finished: true, already_done: true });
        }
        RotationStart::WrongOldKey => {
            anyhow::bail!("the old data key (DOUDI_DATA_KEY) is not this database's key")
        }
        RotationStart::OtherRotationInProgress => {
            anyhow::bail!("a rotation to another new key was started and not finished: finish it with that key first")
        }
    };
    let mut done = 0u64;
    let mut batches = 0usize;
    loop {
        if max_batches.is_some_and(|m| batches >= m) {
            return Ok(RotationReport { re_encrypted: done, finished: false, already_done: false });
        }
        let rows = store.persons_to_rotate(generation, batch).await?;
        if rows.is_empty() {
            break;
        }
        let mut out = Vec::with_capacity(rows.len());
        for (k, cipher) in rows {
            let id = old.decrypt(&cipher, &k).context("a stored ID number does not open with the old data key")?;
            anyhow::ensure!(old.person_key(&id) == k, "a stored ID number does not match its person key");
            out.push((k, new.encrypt(&id, &k)));
        }
        done += store.rotate_persons(&out, generation).await?;
        batches += 1;
    }
    store.rotation_finish().await?;
    Ok(RotationReport { re_encrypted: done, finished: true, already_done: false })
}
