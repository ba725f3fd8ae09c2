//! P10: `MatchRecipients` (batch comparison) over mTLS on P1's data set, each message audited (docs/spec/performance.md:
//! ≥ 50,000 ID numbers/s). Every distinct ID number of civil affairs' facts is compared once, as civil_affairs, in
//! [`CALLS`] concurrent calls on one connection, [`MESSAGE_IDS`] ID numbers a message.

use std::time::{Duration, Instant};

use crate::grpc::pb;

use super::hub::ChildHub;

/// Concurrent calls (one connection, as an agency's comparison job would open them).
pub const CALLS: usize = 4;

/// ID numbers per request message (`doudi match` sends the same).
pub const MESSAGE_IDS: usize = crate::client::matching::MESSAGE_IDS;

/// What the run measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub ids: usize,
    pub enrolled: usize,
    pub not_enrolled: usize,
    pub elapsed: Duration,
}

/// Compare `ids` (distinct ID numbers the hub holds) as civil_affairs on `as_of`. Fails if a call fails or an answer
/// is missing or INVALID.
pub async fn run(hub: &ChildHub, ids: Vec<String>, as_of: &str) -> anyhow::Result<Outcome> {
    let clients = hub.client("civil_affairs").await?;
    let per_call = ids.len().div_ceil(CALLS).max(1);
    let t = Instant::now();
    let mut calls = Vec::new();
    for chunk in ids.chunks(per_call) {
        let mut ex = clients.exchange.clone();
        let messages: Vec<pb::MatchRecipientsRequest> = chunk
            .chunks(MESSAGE_IDS)
            .enumerate()
            .map(|(i, c)| pb::MatchRecipientsRequest {
                id_numbers: c.to_vec(),
                purpose: if i == 0 { "benchmark P10".into() } else { String::new() },
                as_of: if i == 0 { as_of.to_owned() } else { String::new() },
            })
            .collect();
        let want = chunk.len();
        calls.push(tokio::spawn(async move {
            let mut answers = ex.match_recipients(futures::stream::iter(messages)).await?.into_inner();
            let (mut n, mut enrolled, mut not_enrolled) = (0usize, 0usize, 0usize);
            while let Some(r) = answers.message().await? {
                for r in r.results {
                    n += 1;
                    match pb::MatchOutcome::try_from(r.outcome) {
                        Ok(pb::MatchOutcome::Enrolled) => enrolled += 1,
                        Ok(pb::MatchOutcome::NotEnrolled) => not_enrolled += 1,
                        _ => anyhow::bail!("ID number {} answered {:?}: {}", r.index, r.outcome, r.reason),
                    }
                }
            }
            anyhow::ensure!(n == want, "a call answered {n} of {want} ID numbers");
            Ok::<_, anyhow::Error>((enrolled, not_enrolled))
        }));
    }
    let (mut enrolled, mut not_enrolled) = (0, 0);
    for c in calls {
        let (e, ne) = c.await??;
        enrolled += e;
        not_enrolled += ne;
    }
    Ok(Outcome { ids: ids.len(), enrolled, not_enrolled, elapsed: t.elapsed() })
}
