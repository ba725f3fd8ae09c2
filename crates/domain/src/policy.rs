//! Access by need: the one module that decides who may push and read what (docs/spec/security.md).
//!
//! The matrix is data: [`AccessPolicy::default`] loads `access_policy.toml` (the matrix of
//! docs/spec/security.md), and a deployment may load its own file. Handlers never test agency codes; they
//! ask this module.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::agency::{AgencyCode, Principal};
use super::fact::{Payload, PayloadKind};

/// Who answers a finding (issue 19, docs/findings.md): only the agency the finding names (`agency_to_act`), and a
/// county office (`county` = the caller's GB/T 2260 county code) only for a finding whose division lies in its
/// county. The same rule for medical and coverage findings.
pub fn may_answer(caller_agency: &str, county: Option<&str>, agency_to_act: &str, division_code: &str) -> bool {
    caller_agency == agency_to_act && county.is_none_or(|c| division_code.starts_with(c))
}

/// The default policy file, compiled in.
pub const DEFAULT_POLICY_TOML: &str = include_str!("access_policy.toml");

/// Which fields of a payload an agency may read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FieldSelection {
    /// The string `"all"`.
    All(AllMarker),
    /// A list of field names of the payload.
    Only(Vec<String>),
}

/// The literal `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllMarker {
    All,
}

/// A condition on the person for a read to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The person has a `student` fact in force (education's view of assistance).
    Student,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Student => "student",
        }
    }
}

/// One read permission: which fields of a kind, under which condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRule {
    pub fields: FieldSelection,
    #[serde(default)]
    pub condition: Option<Condition>,
}

impl ReadRule {
    /// `None` = every field.
    pub fn field_list(&self) -> Option<&[String]> {
        match &self.fields {
            FieldSelection::All(_) => None,
            FieldSelection::Only(v) => Some(v),
        }
    }
}

/// Rules of one agency.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyRules {
    #[serde(default)]
    pub push: Vec<PayloadKind>,
    #[serde(default)]
    pub aggregates: bool,
    #[serde(default)]
    pub read: BTreeMap<PayloadKind, ReadRule>,
    /// Rights on the coordination workflows (fund reports, early warnings).
    #[serde(default)]
    pub coordination: Vec<CoordinationRight>,
    /// Rights on the medical cross-check (settlements, findings; docs/spec/medical.md).
    #[serde(default)]
    pub medical: Vec<MedicalRight>,
    /// Rights on the audit log (docs/spec/security.md).
    #[serde(default)]
    pub audit: Vec<AuditRight>,
    /// Rights on subsidy campaigns (issue 18; docs/subsidies.md).
    #[serde(default)]
    pub subsidies: Vec<SubsidyRight>,
}

/// A right on subsidy campaigns (issue 18; docs/subsidies.md), granted per agency in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubsidyRight {
    /// `PushPriceIndices` (development_reform).
    PushPriceIndices,
    /// `DecideLinkage`, `ListPriceIndices`, `ListLinkageRules` (no person-level data).
    DecideLinkage,
    /// `ListEntitlements` (person-level data; a county office within its county).
    ReadEntitlements,
}

impl SubsidyRight {
    pub fn as_str(self) -> &'static str {
        match self {
            SubsidyRight::PushPriceIndices => "push_price_indices",
            SubsidyRight::DecideLinkage => "decide_linkage",
            SubsidyRight::ReadEntitlements => "read_entitlements",
        }
    }
}

/// A right on the audit log, granted per agency in the policy file. Without it an agency lists only its own
/// events; every agency may verify the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditRight {
    /// `ListAccessEvents` over every agency's events, filtered by person ("who looked at this person's data").
    ReadAccessEvents,
}

/// A right on the medical cross-check, granted per agency in the policy file (docs/spec/medical.md;
/// docs/spec/security.md "medical_insurance, settlements, findings").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicalRight {
    /// `SubmitSettlements`.
    SubmitSettlements,
    /// `ListFindings` (person-level data).
    ReadFindings,
    /// `RecheckPeriod`.
    Recheck,
}

impl MedicalRight {
    pub fn as_str(self) -> &'static str {
        match self {
            MedicalRight::SubmitSettlements => "submit_settlements",
            MedicalRight::ReadFindings => "read_findings",
            MedicalRight::Recheck => "recheck",
        }
    }
}

/// A right on the coordination workflows (docs/spec/coordination.md), granted per agency in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinationRight {
    /// `SubmitFundReport` (a county office for its own county only).
    SubmitFundReports,
    /// `ListFundReports` (aggregate data).
    ReadFundReports,
    /// `PushWarnings` and `RecordWarningOutcome`.
    PushWarnings,
    /// `ListWarnings` (person-level data).
    ReadWarnings,
    /// `CreateSnapshot` (freezing a quarter). Reading snapshots and summaries needs only `aggregates`.
    CreateSnapshots,
}

impl CoordinationRight {
    pub fn as_str(self) -> &'static str {
        match self {
            CoordinationRight::SubmitFundReports => "submit_fund_reports",
            CoordinationRight::ReadFundReports => "read_fund_reports",
            CoordinationRight::PushWarnings => "push_warnings",
            CoordinationRight::ReadWarnings => "read_warnings",
            CoordinationRight::CreateSnapshots => "create_snapshots",
        }
    }
}

/// An action over the whole city (every county) that cannot be narrowed to one county: only the city office of an
/// agency (a principal without a county) may take it, and only with the right the action also needs. A county office
/// gets PERMISSION_DENIED naming the action (issue 23: a county office froze the city's quarter). Which actions are
/// city-wide is data: `city_wide` in the policy file; a file without that key makes every one of them city-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CityWideAction {
    /// `CreateSnapshot`: freezes the city's quarter (once; it cannot be redone).
    CreateSnapshot,
    /// `VerifySnapshot`: recomputes the city's frozen quarter; its differences name fact versions of every county.
    VerifySnapshot,
    /// `GetQuarterlySummary`: the city's quarterly summary (every county).
    GetQuarterlySummary,
    /// `GetMonthlyReport`: the city's monthly report (every county).
    GetMonthlyReport,
    /// `ListAccessEvents` over every agency's events or by person (the `read_access_events` right).
    ListEveryAgencysAccessEvents,
    /// `SignSnapshot`: countersigns the city's frozen quarter for the whole agency (docs/countersign.md).
    SignSnapshot,
}

impl CityWideAction {
    /// Every city-wide action (the default of a policy file without `city_wide`).
    pub const ALL: [CityWideAction; 6] = [
        CityWideAction::CreateSnapshot,
        CityWideAction::VerifySnapshot,
        CityWideAction::GetQuarterlySummary,
        CityWideAction::GetMonthlyReport,
        CityWideAction::ListEveryAgencysAccessEvents,
        CityWideAction::SignSnapshot,
    ];

    /// The name in the policy file, e.g. `create_snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            CityWideAction::CreateSnapshot => "create_snapshot",
            CityWideAction::VerifySnapshot => "verify_snapshot",
            CityWideAction::GetQuarterlySummary => "get_quarterly_summary",
            CityWideAction::GetMonthlyReport => "get_monthly_report",
            CityWideAction::ListEveryAgencysAccessEvents => "list_every_agencys_access_events",
            CityWideAction::SignSnapshot => "sign_snapshot",
        }
    }

    /// What the action does, for the refusal's message.
    pub fn describe(self) -> &'static str {
        match self {
            CityWideAction::CreateSnapshot => "CreateSnapshot (freezing the city's quarter)",
            CityWideAction::VerifySnapshot => "VerifySnapshot (checking the city's frozen quarter)",
            CityWideAction::GetQuarterlySummary => "GetQuarterlySummary (the city's quarterly summary)",
            CityWideAction::GetMonthlyReport => "GetMonthlyReport (the city's monthly report)",
            CityWideAction::ListEveryAgencysAccessEvents => {
                "ListAccessEvents by person or of other agencies (the city's audit log)"
            }
            CityWideAction::SignSnapshot => "SignSnapshot (countersigning the city's frozen quarter)",
        }
    }
}

fn all_city_wide() -> Vec<CityWideAction> {
    CityWideAction::ALL.to_vec()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    /// Actions only the city office may take (absent: all of [`CityWideAction::ALL`]).
    #[serde(default = "all_city_wide")]
    city_wide: Vec<CityWideAction>,
    agencies: BTreeMap<String, AgencyRules>,
}

/// Errors of a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("access policy is not valid TOML for the expected shape: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("access policy: agency code {0:?} is not valid")]
    Agency(String),
    #[error("access policy: payload kind {kind} has {owners} owners; it needs exactly one")]
    Owners { kind: PayloadKind, owners: usize },
    #[error("access policy: {agency} reads unknown field {field:?} of {kind}")]
    Field { agency: String, kind: PayloadKind, field: String },
}

/// A decision about one read: visible (with the fields left out) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub payload: Payload,
    pub omitted_fields: Vec<String>,
}

/// The access matrix.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    agencies: BTreeMap<AgencyCode, AgencyRules>,
    city_wide: Vec<CityWideAction>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy::from_toml(DEFAULT_POLICY_TOML).expect("the built-in access policy is valid")
    }
}

/// Field names of each payload kind (the JSON keys of `fact.rs`).
pub fn known_fields(kind: PayloadKind) -> &'static [&'static str] {
    match kind {
        PayloadKind::Assistance => &[
            "program",
            "residence",
            "rural_class",
            "urban_mode",
            "support_mode",
            "household_id",
            "monthly_benefit",
            "status",
        ],
        PayloadKind::Employment => &["status", "unemployment_benefit"],
        PayloadKind::Pension => &["enrolled", "premium_paid_by_government", "receiving", "monthly_pension"],
        PayloadKind::Student => &["stage", "school_code"],
        PayloadKind::EducationAid => &["aid_type", "annual_amount"],
        PayloadKind::MedicalInsurance => &["scheme", "year", "premium_subsidy", "subsidy_amount"],
        PayloadKind::Disability => &["category", "grade", "certificate_no"],
        PayloadKind::DisabilitySubsidy => &["living_subsidy", "nursing_subsidy"],
    }
}

impl AccessPolicy {
    /// Parse and check a policy: agency codes valid, each payload kind has exactly one owner,
    /// every named field exists.
    pub fn from_toml(text: &str) -> Result<AccessPolicy, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        let mut agencies = BTreeMap::new();
        for (code, rules) in file.agencies {
            let agency: AgencyCode = code.parse().map_err(|_| PolicyError::Agency(code.clone()))?;
            for (kind, rule) in &rules.read {
                if let Some(fields) = rule.field_list() {
                    for f in fields {
                        if !known_fields(*kind).contains(&f.as_str()) {
                            return Err(PolicyError::Field { agency: code.clone(), kind: *kind, field: f.clone() });
                        }
                    }
                }
            }
            agencies.insert(agency, rules);
        }
        for kind in PayloadKind::ALL {
            let owners = agencies.values().filter(|r| r.push.contains(kind)).count();
            if owners != 1 {
                return Err(PolicyError::Owners { kind: *kind, owners });
            }
        }
        Ok(AccessPolicy { agencies, city_wide: file.city_wide })
    }

    /// Whether the agency is known to the policy (an unknown one is UNAUTHENTICATED).
    pub fn is_known(&self, agency: &AgencyCode) -> bool {
        self.agencies.contains_key(agency)
    }

    pub fn agencies(&self) -> impl Iterator<Item = &AgencyCode> {
        self.agencies.keys()
    }

    pub fn rules(&self, agency: &AgencyCode) -> Option<&AgencyRules> {
        self.agencies.get(agency)
    }

    /// The owner of a payload kind (the only agency that may push it).
    pub fn owner(&self, kind: PayloadKind) -> &AgencyCode {
        self.agencies
            .iter()
            .find(|(_, r)| r.push.contains(&kind))
            .map(|(a, _)| a)
            .expect("checked at load: every kind has one owner")
    }

    pub fn may_push(&self, agency: &AgencyCode, kind: PayloadKind) -> bool {
        self.agencies.get(agency).is_some_and(|r| r.push.contains(&kind))
    }

    /// The partner agencies whose figures a snapshot holds, who countersign it (docs/countersign.md): every agency
    /// that pushes some kind of fact, in code order. An agency that pushes nothing (leading_group) has no figures of
    /// its own to confirm.
    pub fn partner_agencies(&self) -> Vec<AgencyCode> {
        self.agencies.iter().filter(|(_, r)| !r.push.is_empty()).map(|(a, _)| a.clone()).collect()
    }

    pub fn may_read_aggregates(&self, agency: &AgencyCode) -> bool {
        self.agencies.get(agency).is_some_and(|r| r.aggregates)
    }

    /// Whether the agency holds a coordination right.
    pub fn may(&self, agency: &AgencyCode, right: CoordinationRight) -> bool {
        self.agencies.get(agency).is_some_and(|r| r.coordination.contains(&right))
    }

    /// Whether the agency holds an audit right.
    pub fn may_audit(&self, agency: &AgencyCode, right: AuditRight) -> bool {
        self.agencies.get(agency).is_some_and(|r| r.audit.contains(&right))
    }

    /// Whether the agency holds a subsidy-campaign right.
    pub fn may_subsidy(&self, agency: &AgencyCode, right: SubsidyRight) -> bool {
        self.agencies.get(agency).is_some_and(|r| r.subsidies.contains(&right))
    }

    /// Whether the agency holds a medical cross-check right.
    pub fn may_medical(&self, agency: &AgencyCode, right: MedicalRight) -> bool {
        self.agencies.get(agency).is_some_and(|r| r.medical.contains(&right))
    }

    /// Whether `action` is city-wide (only the city office may take it).
    pub fn is_city_wide(&self, action: CityWideAction) -> bool {
        self.city_wide.contains(&action)
    }

    /// Whether `principal` may take `action` as far as its scope goes: a county office may not take a city-wide
    /// action. The right the action needs is checked separately ([`AccessPolicy::may`] etc.).
    ///
    /// # Errors
    /// The refusal's message (for PERMISSION_DENIED): the action, that it is city-wide, and who may take it.
    pub fn check_city_wide(&self, principal: &Principal, action: CityWideAction) -> Result<(), String> {
        match principal.county() {
            Some(county) if self.is_city_wide(action) => Err(format!(
                "{} is a city-wide action: it covers every county, so only the city office \
                 (spiffe://…/agency/{agency}, without /division/) may take it, not the county office of {county}",
                action.describe(),
                agency = principal.agency(),
                county = county.as_str(),
            )),
            _ => Ok(()),
        }
    }

    pub fn read_rule(&self, agency: &AgencyCode, kind: PayloadKind) -> Option<&ReadRule> {
        self.agencies.get(agency).and_then(|r| r.read.get(&kind))
    }

    /// Whether the agency may read `field` of `kind` for at least some persons.
    pub fn may_ever_read_field(&self, agency: &AgencyCode, kind: PayloadKind, field: &str) -> bool {
        self.read_rule(agency, kind).is_some_and(|r| r.field_list().is_none_or(|fs| fs.iter().any(|f| f == field)))
    }

    /// Whether the agency may read any person-level data at all.
    pub fn reads_person_data(&self, agency: &AgencyCode) -> bool {
        self.agencies.get(agency).is_some_and(|r| !r.read.is_empty())
    }

    /// What `principal` may see of one fact of a person: `None` if nothing.
    ///
    /// `division_code` is the fact's place (county offices see only their county);
    /// `person_is_student` tells whether the person has a `student` fact in force.
    pub fn redact(
        &self,
        principal: &Principal,
        division_code: &super::division::DivisionCode,
        payload: &Payload,
        person_is_student: bool,
    ) -> Option<Redacted> {
        if !principal.in_scope(division_code) {
            return None;
        }
        let rule = self.read_rule(principal.agency(), payload.kind())?;
        match rule.condition {
            Some(Condition::Student) if !person_is_student => return None,
            _ => {}
        }
        let (payload, _) = payload.retain_fields(rule.field_list());
        // Every field of the kind the caller may not read, whether this fact has it or not: the
        // list must not reveal which hidden fields are set (e.g. rural_class ⇒ rural dibao).
        let omitted_fields = match rule.field_list() {
            None => Vec::new(),
            Some(allowed) => known_fields(payload.kind())
                .iter()
                .filter(|f| !allowed.iter().any(|a| a == *f))
                .map(|f| (*f).to_owned())
                .collect(),
        };
        Some(Redacted { payload, omitted_fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_has_one_owner_per_kind() {
        let p = AccessPolicy::default();
        // docs/spec/api.md payload table: owners
        let expected = [
            (PayloadKind::Assistance, "civil_affairs"),
            (PayloadKind::Employment, "human_resources"),
            (PayloadKind::Pension, "human_resources"),
            (PayloadKind::Student, "education"),
            (PayloadKind::EducationAid, "education"),
            (PayloadKind::MedicalInsurance, "medical_insurance"),
            (PayloadKind::Disability, "disability_federation"),
            (PayloadKind::DisabilitySubsidy, "disability_federation"),
        ];
        for (kind, owner) in expected {
            assert_eq!(p.owner(kind).as_str(), owner);
        }
        let lg: AgencyCode = "leading_group".parse().unwrap();
        assert!(p.is_known(&lg) && p.may_read_aggregates(&lg) && !p.reads_person_data(&lg));
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let two_owners = "[agencies.a_x]\npush = [\"assistance\"]\n[agencies.b_x]\npush = [\"assistance\"]\n";
        assert!(matches!(AccessPolicy::from_toml(two_owners), Err(PolicyError::Owners { .. })));
        let mut unknown_field = DEFAULT_POLICY_TOML.to_owned();
        unknown_field
            .push_str("[agencies.tax_bureau]\n[agencies.tax_bureau.read]\nassistance = { fields = [\"income\"] }\n");
        let e = AccessPolicy::from_toml(&unknown_field).unwrap_err();
        assert!(e.to_string().contains("income"), "{e}");
        assert!(AccessPolicy::from_toml("[agencies.Bad]\n").is_err(), "agency codes are validated");
        let bad_action = DEFAULT_POLICY_TOML.replace("city_wide = [", "city_wide = [\"freeze_everything\", ");
        let e = AccessPolicy::from_toml(&bad_action).unwrap_err();
        assert!(e.to_string().contains("freeze_everything"), "{e}");
    }

    /// Issue 23: the built-in matrix names every city-wide action; a county office is refused each, naming it; the
    /// city office passes the scope check; a file without `city_wide` treats all of them as city-wide.
    #[test]
    fn county_offices_may_not_take_city_wide_actions() {
        let p = AccessPolicy::default();
        let city = Principal::new("t.invalid", AgencyCode::civil_affairs(), None).unwrap();
        let huan = Principal::new("t.invalid", AgencyCode::civil_affairs(), Some("621022".parse().unwrap())).unwrap();
        for action in CityWideAction::ALL {
            assert!(p.is_city_wide(action), "{action:?} is in access_policy.toml");
            assert_eq!(p.check_city_wide(&city, action), Ok(()));
            let e = p.check_city_wide(&huan, action).unwrap_err();
            assert!(e.contains("city-wide") && e.contains("621022"), "{e}");
        }
        let e = p.check_city_wide(&huan, CityWideAction::CreateSnapshot).unwrap_err();
        assert!(e.starts_with("CreateSnapshot"), "{e}");
        let without_key: String =
            DEFAULT_POLICY_TOML.lines().filter(|l| !l.starts_with("city_wide")).collect::<Vec<_>>().join("\n");
        assert_ne!(without_key, DEFAULT_POLICY_TOML);
        let p = AccessPolicy::from_toml(&without_key).unwrap();
        assert!(CityWideAction::ALL.iter().all(|a| p.is_city_wide(*a)));
        let none = format!("city_wide = []\n{without_key}");
        assert!(AccessPolicy::from_toml(&none).unwrap().check_city_wide(&huan, CityWideAction::CreateSnapshot).is_ok());
    }

    #[test]
    fn only_the_agency_named_answers_and_a_county_office_for_its_county() {
        assert!(may_answer("medical_insurance", None, "medical_insurance", "621022100000"));
        assert!(may_answer("medical_insurance", Some("621022"), "medical_insurance", "621022100000"));
        assert!(!may_answer("medical_insurance", Some("621023"), "medical_insurance", "621022100000"));
        assert!(!may_answer("civil_affairs", None, "medical_insurance", "621022100000"));
        // A coverage finding's division is its county code.
        assert!(may_answer("education", Some("621022"), "education", "621022"));
    }
}
