//! `spawn_app()`: a hub with its own temporary database and PKI. The database is SQLite (`tests/api`) or a fresh
//! PostgreSQL database (`tests/api_pg`, when `crate::ON_POSTGRES`).

pub mod postgres;

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use doudi::client::{ClientIdentity, Clients, connect};
use doudi::config::Config;
use doudi::domain::id_number::IdNumber;
use doudi::grpc::pb;
use doudi::security::certs::Ca;
use doudi::security::crypto::Keys;
use doudi::server::Application;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

pub const TRUST_DOMAIN: &str = "test.doudi.invalid";

pub struct TestApp {
    pub server: String,
    pub ca: Ca,
    pub dir: tempfile::TempDir,
    /// The hub's database: `sqlite://DIR/hub.db` or a fresh PostgreSQL database.
    pub database_url: String,
    pub app_hub: AppHub,
    /// The metrics endpoint when the test set `metrics_listen`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The hub under test: derefs to the [`doudi::hub::Hub`] for its methods, and holds the parts tests look at directly
/// (white-box checks), taken from the hub's accessors: they are the hub's own (clones share the store, the clock and
/// the refusal log).
#[derive(Clone)]
pub struct AppHub {
    pub store: doudi::store::Store,
    pub clock: doudi::hub::Clock,
    pub keys: Keys,
    pub refusals: std::sync::Arc<doudi::server::refusals::RefusalLog>,
    hub: doudi::hub::Hub,
}

impl AppHub {
    fn of(hub: doudi::hub::Hub) -> AppHub {
        AppHub {
            store: hub.store().clone(),
            clock: hub.clock().clone(),
            keys: hub.keys().clone(),
            refusals: hub.refusals().clone(),
            hub,
        }
    }
}

impl std::ops::Deref for AppHub {
    type Target = doudi::hub::Hub;

    fn deref(&self) -> &doudi::hub::Hub {
        &self.hub
    }
}

/// A database for one hub: a file in `dir` on SQLite, a fresh database on PostgreSQL.
pub async fn test_database_url(dir: &std::path::Path) -> String {
    if crate::ON_POSTGRES {
        postgres::fresh_database().await
    } else {
        format!("sqlite://{}", dir.join("hub.db").display())
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tune: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_prepared(tune, |_, _| {}).await
}

/// `prepare` may write more files (e.g. `ca.crl`) into the certificate directory before the hub starts.
pub async fn spawn_app_prepared(
    tune: impl FnOnce(&mut Config),
    prepare: impl FnOnce(&Ca, &std::path::Path),
) -> TestApp {
    spawn_app_on(None, tune, prepare).await
}

/// A hub on the database at `database_url` (an existing one, e.g. a copy of a fixture; the hub migrates it at start),
/// or on a fresh one ([`test_database_url`]) when `None`. The PKI is made at run time either way.
pub async fn spawn_app_on(
    database_url: Option<String>,
    tune: impl FnOnce(&mut Config),
    prepare: impl FnOnce(&Ca, &std::path::Path),
) -> TestApp {
    doudi::server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("doudi test CA").unwrap();
    prepare(&ca, dir.path());
    let server_cert = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), &server_cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("server.key"), &server_cert.key_pem).unwrap();
    // The hub's audit signer (docs/audit-lanes.md "Signed heads"), unless `prepare` wrote one of its own.
    if !dir.path().join("audit-signing.key").exists() {
        let signer = ca.issue_audit_signer(TRUST_DOMAIN).unwrap();
        std::fs::write(dir.path().join("audit-signing.pem"), &signer.cert_pem).unwrap();
        std::fs::write(dir.path().join("audit-signing.key"), &signer.key_pem).unwrap();
    }
    let database_url = match database_url {
        Some(url) => url,
        None => test_database_url(dir.path()).await,
    };
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        certs_dir: dir.path().to_owned(),
        trust_domain: TRUST_DOMAIN.into(),
        data_key: Some(Keys::generate_base64().into()),
        handshake_timeout_secs: 2,
        // Audit checkpoints are written by a timer, so they would land among the events a test counts at moments it
        // does not choose; the tests of checkpoints (`audit_lanes.rs`) turn them on.
        audit_checkpoint_secs: 0,
        ..Config::default()
    };
    tune(&mut config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(&config, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let server = format!("https://localhost:{}", app.addr().port());
    let app_hub = AppHub::of(app.hub.clone());
    // Refusals on record (docs/refusals.md) are written when their minute is over: with the wall clock, a test that
    // counts audit events and makes refusals would see them appear when a minute happened to end during it. Fixed
    // here, no minute ends; refusals are written at shutdown, or when a test moves this clock on
    // (`tests/api/refusals.rs`).
    app_hub.refusals.clock.set(Some(chrono::DateTime::from_timestamp(946_684_800, 0).unwrap()));
    let metrics_addr = app.metrics_addr();
    let task = tokio::spawn(app.run());
    let t = TestApp { server, ca, dir, database_url, app_hub, metrics_addr, stop: Some(tx), task: Some(task) };
    t.wait_ready().await;
    t
}

/// A hub whose CRL (written before it starts) revokes a freshly issued client certificate of `agency`; returns the
/// hub and that revoked certificate.
pub async fn spawn_app_with_revoked(agency: &str) -> (TestApp, doudi::security::certs::Issued) {
    use std::time::SystemTime;
    let mut revoked = None;
    let app = spawn_app_prepared(
        |_| {},
        |ca, dir| {
            let r = ca.issue_client(TRUST_DOMAIN, agency, None).unwrap();
            let crl =
                ca.crl_pem(std::slice::from_ref(&r.serial), SystemTime::now() + Duration::from_secs(86_400)).unwrap();
            std::fs::write(dir.join("ca.crl"), crl).unwrap();
            revoked = Some(r);
        },
    )
    .await;
    (app, revoked.unwrap())
}

impl TestApp {
    pub fn identity(&self, agency: &str, county: Option<&str>) -> ClientIdentity {
        let issued = self.ca.issue_client(TRUST_DOMAIN, agency, county).unwrap();
        ClientIdentity {
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        }
    }

    pub async fn client(&self, agency: &str) -> Clients {
        self.client_in(agency, None).await
    }

    pub async fn client_in(&self, agency: &str, county: Option<&str>) -> Clients {
        let ch = connect(&self.server, "localhost", &self.identity(agency, county)).await.unwrap();
        Clients::new(ch, 64 * 1024 * 1024)
    }

    async fn wait_ready(&self) {
        let ch = connect(&self.server, "localhost", &self.identity("civil_affairs", None)).await.unwrap();
        let mut health = HealthClient::new(ch);
        for _ in 0..200 {
            if let Ok(r) = health.check(HealthCheckRequest { service: String::new() }).await
                && r.into_inner().status == ServingStatus::Serving as i32
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("hub did not become SERVING");
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    /// Ask the hub to shut down (as SIGTERM does) without waiting.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Wait for the hub's task to end (after [`begin_stop`](Self::begin_stop)).
    pub async fn join(&mut self) -> anyhow::Result<()> {
        self.task.take().unwrap().await.unwrap()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("hub.db")
    }

    pub async fn fact_versions(&self) -> i64 {
        self.app_hub.store.fact_version_count().await.unwrap()
    }

    pub async fn audit_events(&self) -> i64 {
        self.app_hub.store.audit_count().await.unwrap()
    }
}

/// A valid ID number in `county`, born on `birth`, sequence `seq`.
pub fn id(county: &str, birth: (i32, u32, u32), seq: u16) -> String {
    IdNumber::from_parts(county, NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2).unwrap(), seq).as_str().to_owned()
}

pub fn base(fact_id: &str, id_number: &str, division: &str) -> pb::Fact {
    pb::Fact {
        fact_id: fact_id.into(),
        source_version: 1,
        id_number: id_number.into(),
        division_code: division.into(),
        valid_from: "2023-01-01".into(),
        ..Default::default()
    }
}

pub fn with(mut f: pb::Fact, p: pb::fact::Payload) -> pb::Fact {
    f.payload = Some(p);
    f
}

/// Rural dibao, class 2, 442.00 a month (5304 / 12, docs/domain/qingyang-figures.md 2023).
pub fn rural_dibao() -> pb::fact::Payload {
    pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::Dibao as i32,
        residence: pb::Residence::Rural as i32,
        rural_class: Some(2),
        household_id: "HH-1".into(),
        monthly_benefit: "442.00".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    })
}

pub fn urban_dibao() -> pb::fact::Payload {
    pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::Dibao as i32,
        residence: pb::Residence::Urban as i32,
        urban_mode: pb::UrbanMode::Full as i32,
        household_id: "HH-2".into(),
        monthly_benefit: "700.00".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    })
}

pub fn student() -> pb::fact::Payload {
    pb::fact::Payload::Student(pb::Student { stage: pb::Stage::Primary as i32, school_code: "S-621022-01".into() })
}

pub fn education_aid() -> pb::fact::Payload {
    pb::fact::Payload::EducationAid(pb::EducationAid {
        aid_type: pb::AidType::LivingAllowance as i32,
        annual_amount: "1000.00".into(),
    })
}

pub fn employment() -> pb::fact::Payload {
    pb::fact::Payload::Employment(pb::Employment {
        status: pb::EmploymentStatus::Flexible as i32,
        ..Default::default()
    })
}

pub fn pension() -> pb::fact::Payload {
    pb::fact::Payload::Pension(pb::Pension {
        enrolled: true,
        premium_paid_by_government: true,
        receiving: false,
        monthly_pension: String::new(),
    })
}

pub fn medical_insurance() -> pb::fact::Payload {
    pb::fact::Payload::MedicalInsurance(pb::MedicalInsurance {
        scheme: pb::Scheme::Resident as i32,
        year: 2023,
        premium_subsidy: pb::PremiumSubsidy::Partial as i32,
        subsidy_amount: "220.00".into(),
    })
}

/// Physical disability, grade 2; the certificate number is the ID number + "4" + "2".
pub fn disability(id_number: &str) -> pb::fact::Payload {
    pb::fact::Payload::Disability(pb::Disability {
        category: pb::DisabilityCategory::Physical as i32,
        grade: 2,
        certificate_no: format!("{id_number}42"),
    })
}

pub fn disability_subsidy() -> pb::fact::Payload {
    pb::fact::Payload::DisabilitySubsidy(pb::DisabilitySubsidy {
        living_subsidy: "100.00".into(),
        nursing_subsidy: "100.00".into(),
    })
}

pub async fn push(c: &mut Clients, facts: Vec<pb::Fact>) -> Result<pb::PushFactsResponse, tonic::Status> {
    c.exchange.push_facts(pb::PushFactsRequest { facts }).await.map(|r| r.into_inner())
}

pub async fn get(c: &mut Clients, id_number: &str, as_of: &str) -> Result<pb::Recipient, tonic::Status> {
    c.exchange
        .get_recipient(pb::GetRecipientRequest {
            id_number: id_number.into(),
            as_of: as_of.into(),
            purpose: "test".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

pub fn outcome(r: &pb::FactResult) -> pb::FactOutcome {
    pb::FactOutcome::try_from(r.outcome).unwrap()
}
