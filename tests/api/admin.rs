//! Separated administrators (issue 20 item 1, docs/admin.md): every `doudi.v1.Admin` RPC is allowed to exactly one
//! operator role and refused (PERMISSION_DENIED naming the role, on record as a refusal) to the others and to
//! agencies; every action is an audit event naming the operator, the RPC and the changed state's hash before and
//! after; access-matrix changes and data-key rotation need a second security administrator; the operator commands go
//! through the hub, and the direct path needs `--direct-database`.
//!
//! Expected values come from the issue and docs/admin.md (which role may do what, the event's form), from
//! docs/retention.md (the default periods: audit_persons 366 days, floor 180) and from hashes computed here from the
//! files and values the test itself wrote.

use std::time::Duration;

use doudi::domain::admin::{Role, state_hash};
use doudi::grpc::pb::{self, admin_client::AdminClient};
use macro_rules_attribute::apply;
use sha2::Digest as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

/// An Admin client with a fresh operator certificate of `role` named `name`.
async fn operator(app: &TestApp, role: Role, name: &str) -> AdminClient<Channel> {
    AdminClient::new(connect_as(app, &app.ca.issue_operator(TRUST_DOMAIN, role, name).unwrap()).await)
}

async fn connect_as(app: &TestApp, issued: &doudi::security::certs::Issued) -> Channel {
    let id = doudi::client::ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.clone().into_bytes(),
        key_pem: issued.key_pem.clone().into_bytes(),
    };
    doudi::client::connect(&app.server, "localhost", &id).await.unwrap()
}

/// Call Admin RPC `rpc` with its default (empty) request; `Ok(())` or the status code and message.
async fn call(c: &mut AdminClient<Channel>, rpc: &str) -> Result<(), (Code, String)> {
    let r = match rpc {
        "AddPolicyVersion" => c.add_policy_version(pb::AddPolicyVersionRequest::default()).await.map(|_| ()),
        "ListPolicyVersions" => c.list_policy_versions(pb::ListPolicyVersionsRequest::default()).await.map(|_| ()),
        "AddLinkageRule" => c.add_linkage_rule(pb::AddLinkageRuleRequest::default()).await.map(|_| ()),
        "AddFixedCampaign" => c.add_fixed_campaign(pb::AddFixedCampaignRequest::default()).await.map(|_| ()),
        "AddCalendarNotice" => c.add_calendar_notice(pb::AddCalendarNoticeRequest::default()).await.map(|_| ()),
        "GetRetentionSettings" => {
            c.get_retention_settings(pb::GetRetentionSettingsRequest::default()).await.map(|_| ())
        }
        "SetRetentionPeriod" => c.set_retention_period(pb::SetRetentionPeriodRequest::default()).await.map(|_| ()),
        "PlaceLegalHold" => c.place_legal_hold(pb::PlaceLegalHoldRequest::default()).await.map(|_| ()),
        "ReleaseLegalHold" => c.release_legal_hold(pb::ReleaseLegalHoldRequest::default()).await.map(|_| ()),
        "PurgeExpiredRecords" => c
            .purge_expired_records(pb::PurgeExpiredRecordsRequest { dry_run: true, ..Default::default() })
            .await
            .map(|_| ()),
        "RevokeCertificate" => c.revoke_certificate(pb::RevokeCertificateRequest::default()).await.map(|_| ()),
        "RefreshCrl" => c.refresh_crl(pb::RefreshCrlRequest::default()).await.map(|_| ()),
        "RequestChange" => c.request_change(pb::RequestChangeRequest::default()).await.map(|_| ()),
        "ApproveChange" => c.approve_change(pb::ApproveChangeRequest::default()).await.map(|_| ()),
        "ListChanges" => c.list_changes(pb::ListChangesRequest::default()).await.map(|_| ()),
        "ListAuditEvents" => c.list_audit_events(pb::ListAuditEventsRequest::default()).await.map(|_| ()),
        "VerifyAuditLog" => c.verify_audit_log(pb::VerifyAuditLogRequest::default()).await.map(|_| ()),
        other => panic!("no such RPC {other}"),
    };
    r.map_err(|s| (s.code(), s.message().to_owned()))
}

/// Every Admin event of the hub, newest first, as the audit administrator reads them.
async fn admin_events(auditor: &mut AdminClient<Channel>) -> Vec<pb::AccessEvent> {
    auditor
        .list_audit_events(pb::ListAuditEventsRequest {
            agency: "operator".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

fn op_id(role: &str, name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/operator/{role}/{name}")
}

/// The issue's split of the administrators' duties, RPC by RPC (docs/admin.md's table).
const EXPECTED: [(&str, Role); 17] = [
    ("AddPolicyVersion", Role::System),
    ("ListPolicyVersions", Role::System),
    ("AddLinkageRule", Role::System),
    ("AddFixedCampaign", Role::System),
    ("AddCalendarNotice", Role::System),
    ("GetRetentionSettings", Role::System),
    ("SetRetentionPeriod", Role::System),
    ("PlaceLegalHold", Role::System),
    ("ReleaseLegalHold", Role::System),
    ("PurgeExpiredRecords", Role::System),
    ("RevokeCertificate", Role::Security),
    ("RefreshCrl", Role::Security),
    ("RequestChange", Role::Security),
    ("ApproveChange", Role::Security),
    ("ListChanges", Role::Security),
    ("ListAuditEvents", Role::Audit),
    ("VerifyAuditLog", Role::Audit),
];

/// Each RPC answers its own role (never PERMISSION_DENIED or UNAUTHENTICATED: an empty request may be
/// INVALID_ARGUMENT) and refuses the two other roles and an agency with PERMISSION_DENIED naming the role required;
/// those refusals are on record as PERMISSION_DENIED events of the operator or agency.
#[apply(e2e!)]
#[tokio::test]
async fn each_rpc_is_allowed_to_exactly_one_role() {
    let app = spawn_app().await;
    let mut system = operator(&app, Role::System, "sam").await;
    let mut security = operator(&app, Role::Security, "alice").await;
    let mut audit = operator(&app, Role::Audit, "ada").await;
    let agency = app.ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    let mut civil = AdminClient::new(connect_as(&app, &agency).await);
    let mut denied = 0;
    for (rpc, role) in EXPECTED {
        for (caller_role, client) in
            [(Role::System, &mut system), (Role::Security, &mut security), (Role::Audit, &mut audit)]
        {
            let r = call(client, rpc).await;
            if caller_role == role {
                if let Err((code, msg)) = &r {
                    assert!(
                        !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                        "{rpc} refused its own role {role}: {code:?} {msg}"
                    );
                }
            } else {
                let (code, msg) = r.expect_err(&format!("{rpc} answered the {caller_role} administrator"));
                assert_eq!(code, Code::PermissionDenied, "{rpc} as {caller_role}: {msg}");
                assert!(msg.contains(&format!("allowed to the {role} administrator only")), "{rpc}: {msg}");
                denied += 1;
            }
        }
        let (code, msg) = call(&mut civil, rpc).await.expect_err("an agency is refused");
        assert_eq!(code, Code::PermissionDenied, "{rpc} as civil_affairs: {msg}");
        assert!(msg.contains(&format!("the {role} administrator only")) && msg.contains("civil_affairs"), "{msg}");
        denied += 1;
    }
    // 17 RPCs × 2 other roles + 17 × the agency.
    assert_eq!(denied, 51);

    // On record: the hub writes the refusals at shutdown (the test clock never ends a minute).
    app.app_hub.refusals.flush_all(&app.app_hub.store).await;
    let refused = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            outcome: "PERMISSION_DENIED".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    // One aggregated event per (method, peer): the audit administrator was refused 15 RPCs (17 − its 2), the agency 17.
    let of = |peer: &str| refused.iter().filter(|e| e.purpose.contains(&format!("peer={peer};"))).count();
    assert_eq!(of(&op_id("audit", "ada")), 15);
    assert_eq!(of(&format!("spiffe://{TRUST_DOMAIN}/agency/civil_affairs")), 17);
    let one = refused
        .iter()
        .find(|e| e.method == "/doudi.v1.Admin/RequestChange" && e.purpose.contains(&op_id("system", "sam")))
        .expect("the system administrator's refused RequestChange is on record");
    assert_eq!(one.agency, "operator");
    assert_eq!(one.outcome, "REFUSED PERMISSION_DENIED count=1");
    app.stop().await;
}

/// Actions are audit events (agency operator, method the RPC, purpose `by=…; role=…; arguments`, outcome with the
/// state's hash before and after), and the chain still verifies; the audit administrator reads but changes nothing.
#[apply(e2e!)]
#[tokio::test]
async fn every_action_is_an_audit_event_with_before_and_after_hashes() {
    let app = spawn_app().await;
    let mut system = operator(&app, Role::System, "sam").await;
    let mut security = operator(&app, Role::Security, "alice").await;
    let mut audit = operator(&app, Role::Audit, "ada").await;

    // Retention: audit_persons from the migration's 366 days to 200 (floor 180: docs/retention.md).
    let migrated = app.app_hub.store.retention_policies().await.unwrap();
    let before = migrated.iter().find(|p| p.kind.as_str() == "audit_persons").unwrap();
    assert_eq!(before.days, 366);
    let r = system
        .set_retention_period(pb::SetRetentionPeriodRequest {
            kind: "audit_persons".into(),
            days: 200,
            source: "市局决定 2026-7".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.days_before, r.days_after), (366, 200));
    let e = system
        .set_retention_period(pb::SetRetentionPeriodRequest {
            kind: "audit_persons".into(),
            days: 179,
            source: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("days:"), "{}", e.message());

    // A certificate revoked through the hub: the hub holds its CA key here.
    std::fs::write(app.dir.path().join("ca.key"), app.ca.key_pem()).unwrap();
    let education = app.ca.issue_client(TRUST_DOMAIN, "education", None).unwrap();
    let mut edu = doudi::client::Clients::new(connect_as(&app, &education).await, 1 << 20);
    edu.audit.who_am_i(pb::WhoAmIRequest {}).await.expect("education is served before");
    let revoked = security
        .revoke_certificate(pb::RevokeCertificateRequest { certificate_pem: education.cert_pem.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.serial, education.serial_hex());
    assert!(revoked.newly_revoked);
    assert_eq!(revoked.revoked_count, 1);
    // The hub reloaded its CRL: a new connection with the certificate is refused at the handshake.
    let id = doudi::client::ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: education.cert_pem.clone().into_bytes(),
        key_pem: education.key_pem.clone().into_bytes(),
    };
    let refused = match doudi::client::connect(&app.server, "localhost", &id).await {
        Err(_) => true,
        Ok(ch) => doudi::client::Clients::new(ch, 1 << 20).audit.who_am_i(pb::WhoAmIRequest {}).await.is_err(),
    };
    assert!(refused, "the revoked certificate still connects");
    let bad = security
        .revoke_certificate(pb::RevokeCertificateRequest { certificate_pem: "not a certificate".into() })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("certificate_pem"), "{}", bad.message());

    let events = admin_events(&mut audit).await;
    let set = events.iter().find(|e| e.method == "/doudi.v1.Admin/SetRetentionPeriod").expect("audited");
    assert_eq!(set.agency, "operator");
    assert!(set.purpose.starts_with(&format!("by={}; role=system; ", op_id("system", "sam"))), "{}", set.purpose);
    // The state hashed: kind, days, source (docs/admin.md "Audit events").
    let h_before = state_hash(&["audit_persons", "366", &before.source]);
    let h_after = state_hash(&["audit_persons", "200", "市局决定 2026-7"]);
    assert!(set.outcome.contains("audit_persons 366 days -> 200 days"), "{}", set.outcome);
    assert!(set.outcome.ends_with(&format!("before={h_before}; after={h_after}")), "{}", set.outcome);

    let rev = events.iter().find(|e| e.method == "/doudi.v1.Admin/RevokeCertificate").expect("audited");
    assert!(rev.purpose.starts_with(&format!(
        "by={}; role=security; serial={}",
        op_id("security", "alice"),
        revoked.serial
    )));
    // Before: neither revoked-serials.txt nor ca.crl existed; after: the SHA-256 of each file as written.
    let file_hash = |f: &str| {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(std::fs::read(app.dir.path().join(f)).unwrap())))
    };
    let none = state_hash(&["none", "none"]);
    let written = state_hash(&[&file_hash("revoked-serials.txt"), &file_hash("ca.crl")]);
    assert!(rev.outcome.ends_with(&format!("before={none}; after={written}")), "{}", rev.outcome);
    assert_eq!(
        std::fs::read_to_string(app.dir.path().join("revoked-serials.txt")).unwrap(),
        format!("{}\n", education.serial_hex())
    );

    // Reads are events too (the state read hashes alike before and after); the audit administrator changes nothing.
    let n = app.audit_events().await;
    let e = audit.request_change(pb::RequestChangeRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("the security administrator only"), "{}", e.message());
    let e = audit
        .set_retention_period(pb::SetRetentionPeriodRequest { kind: "change_log".into(), days: 30, source: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(
        app.app_hub
            .store
            .retention_policies()
            .await
            .unwrap()
            .iter()
            .find(|p| p.kind.as_str() == "change_log")
            .unwrap()
            .days,
        366
    );
    let v = audit.verify_audit_log(pb::VerifyAuditLogRequest {}).await.unwrap().into_inner().result.unwrap();
    assert!(v.valid, "{}", v.reason);
    // The refusals are not written yet (their minute is not over); the verification is one event.
    assert_eq!(app.audit_events().await, n + 1);
    let events = admin_events(&mut audit).await;
    let verify = &events[0];
    assert_eq!(verify.method, "/doudi.v1.Admin/VerifyAuditLog");
    assert!(verify.purpose.starts_with(&format!("by={}; role=audit", op_id("audit", "ada"))));
    app.stop().await;
}

/// A matrix change and a data-key rotation take a request by one security administrator and an approval by another;
/// self-approval is refused, so are unknown, expired and already approved requests; an approved rotation lets `doudi
/// keys rotate` run (and is marked applied), an unapproved one is refused. The CLI path (`doudi admin …` through the
/// hub) and the break-glass rule of the direct path are exercised on the binary.
#[apply(e2e!)]
// Several threads: the `doudi` binary calls this hub while the test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_security_administrators_approve_a_change() {
    let app = spawn_app_with(|c| c.admin_change_ttl_secs = 2).await;
    let mut alice = operator(&app, Role::Security, "alice").await;
    let mut bob = operator(&app, Role::Security, "bob").await;
    let mut audit = operator(&app, Role::Audit, "ada").await;
    let matrix = include_str!("../../crates/domain/src/access_policy.toml");

    let bad = alice
        .request_change(pb::RequestChangeRequest {
            kind: pb::ChangeKind::AccessMatrix as i32,
            access_matrix_toml: "agencies = 3".into(),
            reason: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("access_matrix_toml: not a valid access matrix"), "{}", bad.message());

    let req = |kind: pb::ChangeKind, toml: &str, check: &str| pb::RequestChangeRequest {
        kind: kind as i32,
        access_matrix_toml: toml.into(),
        new_key_check: check.into(),
        reason: "季度权限复核".into(),
    };
    let c =
        alice.request_change(req(pb::ChangeKind::AccessMatrix, matrix, "")).await.unwrap().into_inner().change.unwrap();
    assert_eq!(c.state, pb::ChangeState::Pending as i32);
    assert_eq!(c.requested_by, op_id("security", "alice"));
    let ttl = c.expire_time.unwrap().seconds - c.request_time.unwrap().seconds;
    assert!((1..=2).contains(&ttl), "admin_change_ttl_secs = 2: {ttl}");
    let pending = bob.list_changes(pb::ListChangesRequest { all: false }).await.unwrap().into_inner().changes;
    assert_eq!(pending.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c.id]);

    // Self-approval: refused, and nothing changes.
    let e = alice.approve_change(pb::ApproveChangeRequest { change_id: c.id, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("was requested by you"), "{}", e.message());
    // A content hash other than the request's: refused.
    let e = bob
        .approve_change(pb::ApproveChangeRequest { change_id: c.id, content_hash: "sha256:00".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // The second security administrator approves what was read.
    let approved = bob
        .approve_change(pb::ApproveChangeRequest { change_id: c.id, content_hash: c.content_hash.clone() })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(approved.state, pb::ChangeState::Approved as i32);
    assert_eq!(approved.approved_by, op_id("security", "bob"));
    // What a hub starting now would use: this request's matrix.
    let (in_force, policy) = doudi::hub::admin::approved_access_matrix(&app.app_hub.store).await.unwrap().unwrap();
    assert_eq!((in_force.id, in_force.payload.as_str()), (c.id, matrix));
    assert_eq!(
        policy.agencies().count(),
        7,
        "the six agencies of docs/spec/security.md and development_reform (issue 18)"
    );
    // Approved already; unknown.
    let carol_cert = app.ca.issue_operator(TRUST_DOMAIN, Role::Security, "carol").unwrap();
    let mut carol = AdminClient::new(connect_as(&app, &carol_cert).await);
    let e = carol.approve_change(pb::ApproveChangeRequest { change_id: c.id, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("is APPROVED, not PENDING"), "{}", e.message());
    let e =
        carol.approve_change(pb::ApproveChangeRequest { change_id: 9_999, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Expired: not approved within admin_change_ttl_secs (2 s).
    let late =
        alice.request_change(req(pb::ChangeKind::AccessMatrix, matrix, "")).await.unwrap().into_inner().change.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let e =
        bob.approve_change(pb::ApproveChangeRequest { change_id: late.id, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("expired"), "{}", e.message());

    // The events: request, approval (hash of the pending request before, of the approved one after).
    let events = admin_events(&mut audit).await;
    let approval = events.iter().find(|e| e.method == "/doudi.v1.Admin/ApproveChange").expect("audited");
    assert!(approval.purpose.starts_with(&format!(
        "by={}; role=security; change_id={}",
        op_id("security", "bob"),
        c.id
    )));
    assert!(approval.outcome.contains(&format!("before={}; after={}", c.content_hash, approved.content_hash)));
    assert_ne!(c.content_hash, approved.content_hash);
    let requests = events.iter().filter(|e| e.method == "/doudi.v1.Admin/RequestChange").count();
    assert_eq!(requests, 2);

    // A data-key rotation, requested and approved through the binary (the CLI path), then run with the hub stopped.
    let certs = tempfile::tempdir().unwrap();
    std::fs::write(certs.path().join("ca.pem"), app.ca.cert_pem()).unwrap();
    for (role, name) in [(Role::Security, "alice"), (Role::Security, "bob")] {
        let i = app.ca.issue_operator(TRUST_DOMAIN, role, name).unwrap();
        std::fs::write(certs.path().join(format!("operator-{name}.pem")), &i.cert_pem).unwrap();
        std::fs::write(certs.path().join(format!("operator-{name}.key")), &i.key_pem).unwrap();
    }
    let new_key = doudi::security::crypto::Keys::generate_base64();
    let doudi_cmd = |args: &[&str], extra_env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"));
        cmd.args(args).env_remove("DOUDI_CONFIG").env_remove("DOUDI_TEST_DATABASE_URL");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let hub_args = |name: &'static str| -> Vec<String> {
        vec![
            "--operator".into(),
            name.into(),
            "--certs-dir".into(),
            certs.path().display().to_string(),
            "--server".into(),
            app.server.clone(),
        ]
    };
    let mut args = vec!["keys".to_owned(), "request-rotation".into(), "--reason".into(), "年度轮换".into()];
    args.extend(hub_args("alice"));
    let (ok, said) =
        doudi_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[("DOUDI_NEW_DATA_KEY", &new_key)]);
    assert!(ok, "{said}");
    let id: i64 = said.split("as change ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    let mut args = vec!["admin".to_owned(), "approve".into(), id.to_string()];
    args.extend(hub_args("alice"));
    let (ok, said) = doudi_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(!ok && said.contains("PermissionDenied") && said.contains("requested by you"), "{said}");
    let mut args = vec!["admin".to_owned(), "approve".into(), id.to_string()];
    args.extend(hub_args("bob"));
    let (ok, said) = doudi_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(ok && said.contains("CHANGE_STATE_APPROVED"), "{said}");

    // The direct path of a command that changes the hub needs --direct-database.
    let (ok, said) =
        doudi_cmd(&["retention", "set", "change_log", "30", "--source", "x", "--database-url", &app.database_url], &[]);
    assert!(!ok && said.contains("--direct-database"), "{said}");

    app.stop().await;
}

/// `doudi keys rotate` runs only for a rotation two security administrators approved (else only with
/// `--without-approval`, break-glass), and marks it applied with the old and new key's check values as the event's
/// before and after.
#[apply(e2e!)]
#[tokio::test]
async fn rotation_needs_an_approved_request() {
    use doudi::security::crypto::Keys;
    let dir = tempfile::tempdir().unwrap();
    let db = test_database_url(dir.path()).await;
    let (k1, k2, k3) = (Keys::generate_base64(), Keys::generate_base64(), Keys::generate_base64());
    let check = |k: &str| hex::encode(Keys::from_base64(k).unwrap().check_value());
    let app = spawn_app_with(|c| {
        c.database_url = db.clone();
        c.data_key = Some(k1.clone().into());
    })
    .await;
    let mut alice = operator(&app, Role::Security, "alice").await;
    let mut bob = operator(&app, Role::Security, "bob").await;
    let e = alice
        .request_change(pb::RequestChangeRequest {
            kind: pb::ChangeKind::DataKeyRotation as i32,
            new_key_check: check(&k1),
            reason: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.message().starts_with("new_key_check: is the check value of the data key in use"), "{}", e.message());
    let c = alice
        .request_change(pb::RequestChangeRequest {
            kind: pb::ChangeKind::DataKeyRotation as i32,
            new_key_check: check(&k2),
            reason: "年度轮换".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    bob.approve_change(pb::ApproveChangeRequest { change_id: c.id, ..Default::default() }).await.unwrap();
    app.stop().await;

    let rotate = |new: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(["keys", "rotate", "--database-url", &db])
            .env("DOUDI_DATA_KEY", &k1)
            .env("DOUDI_NEW_DATA_KEY", new)
            .env("USER", "root")
            .env_remove("DOUDI_CONFIG")
            .env_remove("DOUDI_TEST_DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, said) = rotate(&k3);
    assert!(!ok && said.contains("no approved rotation to this data key"), "{said}");
    let (ok, said) = rotate(&k2);
    assert!(ok, "{said}");
    assert!(said.contains(&format!("change {} requested by {}", c.id, op_id("security", "alice"))), "{said}");

    let store = doudi::store::Store::open(&db).await.unwrap();
    let applied = store.admin_changes().await.unwrap().into_iter().find(|x| x.id == c.id).unwrap();
    assert_eq!(applied.applied.as_ref().map(|(by, _)| by.as_str()), Some("direct-database:root"));
    let newest = store.list_audit_events(&Default::default(), None, 1).await.unwrap().remove(0);
    assert_eq!(newest.method, "doudi keys rotate");
    assert_eq!(newest.agency, "operator");
    assert!(newest.purpose.starts_with("by=direct-database:root; role=direct-database"), "{}", newest.purpose);
    let (before, after) = (state_hash(&[&check(&k1)]), state_hash(&[&check(&k2)]));
    assert!(newest.outcome.ends_with(&format!("before={before}; after={after}")), "{}", newest.outcome);
    store.close().await;
}

/// The system administrator's other actions, each carried out over the wire with a real request (not only checked
/// for who may call it): a medical policy version added (the version in force, relabelled and moved to 2027-01-01,
/// so every value is one the hub already accepted; the same label again is ALREADY_EXISTS), a legal hold on a quarter
/// placed, listed and released (released twice: NOT_FOUND), and a purge on a hub whose every record is younger than
/// its period (docs/retention.md: periods of 180 days and more) purging nothing. Each action is one event naming the
/// system administrator, with the state's hash before and after (docs/admin.md "Audit events").
#[apply(e2e!)]
#[tokio::test]
async fn the_system_administrators_actions_are_carried_out_and_audited() {
    let app = spawn_app().await;
    let mut system = operator(&app, Role::System, "sam").await;
    let mut audit = operator(&app, Role::Audit, "ada").await;

    let held = system.list_policy_versions(pb::ListPolicyVersionsRequest {}).await.unwrap().into_inner().versions;
    let last = held.last().expect("the hub starts with the policy version of docs/spec/medical.md");
    let mut params: serde_json::Value = serde_json::from_str(&last.params_json).unwrap();
    params["version"] = "621000-2027-admin-test".into();
    params["effective_from"] = "2027-01-01".into();
    let add = |params: &serde_json::Value| pb::AddPolicyVersionRequest {
        params_json: params.to_string(),
        source: "测试：the version in force, relabelled".into(),
        example: true,
    };
    let added = system.add_policy_version(add(&params)).await.unwrap().into_inner();
    assert_eq!(
        (added.version.as_str(), added.pooling_area.as_str(), added.effective_from.as_str()),
        ("621000-2027-admin-test", "621000", "2027-01-01")
    );
    let now_held = system.list_policy_versions(pb::ListPolicyVersionsRequest {}).await.unwrap().into_inner().versions;
    assert_eq!(now_held.len(), held.len() + 1);
    let again = system.add_policy_version(add(&params)).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{}", again.message());

    let hold =
        pb::PlaceLegalHoldRequest {
            quarter: "2023Q2".into(), reason: "审计调查 2026-12".into(), ..Default::default()
        };
    let hold_id = system.place_legal_hold(hold).await.unwrap().into_inner().hold_id;
    assert!(hold_id > 0);
    let settings = system.get_retention_settings(pb::GetRetentionSettingsRequest {}).await.unwrap().into_inner();
    let listed = settings.holds.iter().find(|h| h.id == hold_id).expect("the hold is listed");
    assert_eq!(
        (listed.reason.as_str(), listed.placed_by.as_str()),
        ("审计调查 2026-12", op_id("system", "sam").as_str())
    );
    assert!(listed.release_time.is_none());
    let release = pb::ReleaseLegalHoldRequest { hold_id, reason: "调查结束".into() };
    system.release_legal_hold(release.clone()).await.unwrap();
    let twice = system.release_legal_hold(release).await.unwrap_err();
    assert_eq!(twice.code(), Code::NotFound, "{}", twice.message());

    let purged = system
        .purge_expired_records(pb::PurgeExpiredRecordsRequest { dry_run: false, chunk_size: 100, max_chunks: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(!purged.counts.is_empty(), "one count per kind of record");
    assert!(purged.counts.iter().all(|c| c.purged == 0 && c.days >= 180), "{:?}", purged.counts);
    assert!(!purged.interrupted);

    let events = admin_events(&mut audit).await;
    for rpc in ["AddPolicyVersion", "PlaceLegalHold", "ReleaseLegalHold", "PurgeExpiredRecords"] {
        let method = format!("/doudi.v1.Admin/{rpc}");
        let e = events.iter().find(|e| e.method == method).unwrap_or_else(|| panic!("{rpc} not audited"));
        assert!(e.purpose.starts_with(&format!("by={}; role=system", op_id("system", "sam"))), "{}", e.purpose);
        assert!(e.outcome.starts_with("OK"), "{rpc}: {}", e.outcome);
        assert!(e.outcome.contains("before=") && e.outcome.contains("; after="), "{rpc}: {}", e.outcome);
    }
    // The refused second add and second release are not actions: no event of theirs says OK twice.
    let adds = events.iter().filter(|e| e.method == "/doudi.v1.Admin/AddPolicyVersion" && e.outcome.starts_with("OK"));
    assert_eq!(adds.count(), 1);
    app.stop().await;
}
