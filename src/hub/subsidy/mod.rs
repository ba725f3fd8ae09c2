//! Subsidy campaigns (issue 18; docs/subsidies.md): the orchestration of `doudi.v1.Subsidies`. Rights come from the
//! access matrix (`subsidies = [...]`, `domain::policy::SubsidyRight`), the rules from `domain::subsidy`, the data from
//! the store's `SubsidyStore` area and the facts of the roster.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{
    Hub, HubError, audit_of, decode_page_token, encode_page_token, filter_fingerprint, scoped_prefix, storage_prefix,
};
use crate::domain::agency::Principal;
use crate::domain::calendar::Month;
use crate::domain::coordination::FundProgram;
use crate::domain::division::{DivisionCode, QINGYANG_COUNTIES};
use crate::domain::id_number::IdNumber;
use crate::domain::money::Money;
use crate::domain::policy::SubsidyRight;
use crate::domain::subsidy::{
    Entitlement, LinkageDecision, PriceIndex, PriceIndexInput, Qualification, choose_rule, decide, entitlement,
    index_month_of, qualifications,
};
use crate::domain::summary::CampaignRow;
use crate::domain::versioning::Decision;
use crate::security::crypto::PersonKey;
use crate::store::AdminEventRecord as _;
use crate::store::{PersonFilter, StoreError, StoredFact};

mod quarter;

/// Most price indices in one `PushPriceIndices` (ten years of months).
pub const MAX_INDICES_PER_PUSH: usize = 120;

/// Most months in one campaign summary (`SummarizeLinkage`).
pub const MAX_CAMPAIGN_MONTHS: usize = 12;

/// A decided subsidy month with what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionView {
    pub decision: LinkageDecision,
    /// The index version used (the highest stored for the index month); `None` for a fixed-amount campaign.
    pub index: Option<PriceIndex>,
    pub index_version: i64,
    /// The rule version's (or fixed-amount campaign's) source documents.
    pub rule_source: String,
    /// The fund-report program its disbursements are reported under (PRICE_SUBSIDY for the linkage).
    pub fund_program: FundProgram,
}

/// Which campaign a list or summary is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignRef {
    /// The price-subsidy linkage of a subsidy month.
    Linkage(Month),
    /// A fixed-amount campaign, by code.
    Fixed(String),
}

/// One person owed for a subsidy month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementView {
    pub id_number: IdNumber,
    /// The county (6 digits) of the fact the payment rests on.
    pub county_code: String,
    pub entitlement: Entitlement,
    /// The facts that made the person eligible: `agency/fact_id@source_version` per qualification, in the order of
    /// `entitlement.considered`.
    pub facts: Vec<String>,
}

/// A page of `ListEntitlements`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementPage {
    pub decision: DecisionView,
    pub entitlements: Vec<EntitlementView>,
    pub next_page_token: String,
}

/// One county's campaign figures over the months of a summary, and its fund reports of the same months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountyCampaign {
    pub county_code: String,
    /// Distinct persons owed in at least one month.
    pub persons: u64,
    /// Persons owed summed over the months.
    pub person_times: u64,
    pub amount_owed: Money,
    /// The latest PRICE_SUBSIDY report of each month, summed; `None` if no month was reported.
    pub amount_reported: Option<Money>,
    /// `MISSING` (a triggered month without a report), `MISMATCH` (reported and owed differ by more than the
    /// tolerance), or empty.
    pub finding: String,
}

/// `SummarizeLinkage`: the months, each decided, and the county rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSummary {
    pub months: Vec<DecisionView>,
    pub counties: Vec<CountyCampaign>,
    pub tolerance: Money,
}

impl Hub {
    fn require_subsidy(&self, principal: &Principal, right: SubsidyRight, what: &str) -> Result<(), HubError> {
        if self.policy.may_subsidy(principal.agency(), right) {
            Ok(())
        } else {
            Err(HubError::PermissionDenied(format!(
                "agency {} may not {what} (needs the subsidies right {})",
                principal.agency(),
                right.as_str()
            )))
        }
    }

    /// Whether `principal` may push price indices: the `push_price_indices` right, as the city office (indices are
    /// the city's).
    ///
    /// # Errors
    /// PERMISSION_DENIED naming the right or the county office.
    pub fn may_push_price_indices(&self, principal: &Principal) -> Result<(), HubError> {
        self.require_subsidy(principal, SubsidyRight::PushPriceIndices, "push price indices")?;
        match principal.county() {
            Some(c) => Err(HubError::PermissionDenied(format!(
                "price indices are the city's: only the city office may push them, not the county office of {}",
                c.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Every index of a `PushPriceIndices` checked against today (Asia/Shanghai, the hub's clock): the indices, or
    /// every bad field of every index as `(indices[i].<field>, reason)` in request order
    /// ([`PriceIndex::validate`]); an empty batch or one of more than [`MAX_INDICES_PER_PUSH`] is one violation of
    /// `indices`.
    pub fn check_price_indices(&self, inputs: &[PriceIndexInput]) -> Result<Vec<PriceIndex>, Vec<(String, String)>> {
        if inputs.is_empty() {
            return Err(vec![("indices".into(), "is empty".into())]);
        }
        if inputs.len() > MAX_INDICES_PER_PUSH {
            let reason = format!("{} indices exceed the maximum of {MAX_INDICES_PER_PUSH} per request", inputs.len());
            return Err(vec![("indices".into(), reason)]);
        }
        let today = crate::domain::calendar::shanghai_date(self.clock.now());
        let mut rows = Vec::with_capacity(inputs.len());
        let mut errors: Vec<(String, String)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            match PriceIndex::validate(input, today) {
                Ok(p) => rows.push(p),
                Err(es) => errors.extend(es.into_iter().map(|e| (format!("indices[{i}].{}", e.field), e.reason))),
            }
        }
        if errors.is_empty() { Ok(rows) } else { Err(errors) }
    }

    /// `PushPriceIndices`: store checked indices ([`Hub::check_price_indices`]) with the call's audit event in one
    /// transaction. One outcome per index, in order (ACCEPTED, NEW_VERSION, DUPLICATE).
    ///
    /// # Errors
    /// PERMISSION_DENIED as [`Hub::may_push_price_indices`]; the store's.
    pub async fn push_price_indices(
        &self,
        principal: &Principal,
        rows: &[PriceIndex],
    ) -> Result<Vec<Decision>, HubError> {
        self.may_push_price_indices(principal)?;
        let audit =
            audit_of(principal, "PushPriceIndices", String::new(), format!("OK indices={}", rows.len()), vec![]);
        Ok(self.store.push_price_indices(rows, principal.agency(), &audit, self.clock.now()).await?)
    }

    /// The decision of `subsidy_month` (no rights checked: callers do).
    ///
    /// # Errors
    /// FAILED_PRECONDITION when no rule version covers the index month or no index is stored for it.
    pub(crate) async fn linkage_decision(&self, subsidy_month: Month) -> Result<DecisionView, HubError> {
        let index_month = index_month_of(subsidy_month);
        let rules = self.store.linkage_rules().await?;
        let all: Vec<_> = rules.iter().map(|r| r.rule.clone()).collect();
        let rule = choose_rule(&all, index_month).ok_or_else(|| {
            HubError::FailedPrecondition(format!(
                "no linkage rule version covers index month {index_month} (subsidy month {subsidy_month}): add one \
                 with `doudi subsidies rule add`"
            ))
        })?;
        let rule_source = rules.iter().find(|r| r.rule.version == rule.version).map(|r| r.source.clone());
        let stored = self.store.price_index_versions(index_month, index_month).await?;
        let latest = stored.into_iter().last().ok_or_else(|| {
            HubError::FailedPrecondition(format!(
                "no price index stored for index month {index_month} (subsidy month {subsidy_month}): \
                 development_reform pushes it with PushPriceIndices"
            ))
        })?;
        Ok(DecisionView {
            decision: decide(rule, &latest.index, subsidy_month),
            index: Some(latest.index),
            index_version: latest.version,
            rule_source: rule_source.unwrap_or_default(),
            fund_program: FundProgram::PriceSubsidy,
        })
    }

    /// A fixed-amount campaign as a decision (no rights checked: callers do).
    ///
    /// # Errors
    /// NOT_FOUND for an unknown code.
    pub(crate) async fn campaign_decision(&self, code: &str) -> Result<DecisionView, HubError> {
        let all = self.store.fixed_campaigns().await?;
        let c = all
            .into_iter()
            .find(|c| c.campaign.code == code)
            .ok_or_else(|| HubError::NotFound(format!("no fixed-amount campaign {code:?}")))?;
        let fund_program = FundProgram::parse(&c.campaign.fund_program).ok_or_else(|| {
            HubError::Store(StoreError::Corrupt { table: "fixed_campaigns", detail: c.campaign.fund_program.clone() })
        })?;
        Ok(DecisionView {
            decision: c.campaign.decision(),
            index: None,
            index_version: 0,
            rule_source: c.source,
            fund_program,
        })
    }

    async fn decision_of(&self, which: &CampaignRef) -> Result<DecisionView, HubError> {
        match which {
            CampaignRef::Linkage(m) => self.linkage_decision(*m).await,
            CampaignRef::Fixed(code) => self.campaign_decision(code).await,
        }
    }

    /// `DecideLinkage`: whether `subsidy_month` triggered (its index month is the month before), under which rule
    /// version, which index crossed which threshold, and the monthly amount per group and residence.
    ///
    /// # Errors
    /// PERMISSION_DENIED without `decide_linkage`; FAILED_PRECONDITION as [`Hub::linkage_decision`].
    pub async fn decide_linkage(&self, principal: &Principal, subsidy_month: Month) -> Result<DecisionView, HubError> {
        self.require_subsidy(principal, SubsidyRight::DecideLinkage, "decide the price-subsidy linkage")?;
        self.linkage_decision(subsidy_month).await
    }

    /// The entitlements of the persons `keys` under `decision`, from their facts in force on the subsidy month's
    /// last day (every agency's facts: the hub decides, the caller's view does not narrow it); each with the division
    /// code of the fact its first payment rests on.
    async fn entitlements_of(
        &self,
        decision: &LinkageDecision,
        keys: &[PersonKey],
    ) -> Result<Vec<(PersonKey, String, Entitlement, Vec<String>)>, HubError> {
        let on: NaiveDate = decision.subsidy_month.last_day();
        let mut by_person: BTreeMap<PersonKey, Vec<StoredFact>> = BTreeMap::new();
        for f in self.store.facts_of_persons_of_kinds(keys, on, &QUALIFYING_KINDS).await? {
            by_person.entry(f.person_key).or_default().push(f);
        }
        let mut out = Vec::new();
        for k in keys {
            let facts = by_person.remove(k).unwrap_or_default();
            if let Some((division, e, refs)) = entitlement_of_person(decision, &facts) {
                out.push((*k, division, e, refs));
            }
        }
        Ok(out)
    }

    /// Every person's entitlement under `decision`, in arrival order (`person_id`), [`ROSTER_SPAN`] persons a read:
    /// `each` gets the person's key, county and entitlement. The same facts and rule as [`Hub::entitlements_of`] (a
    /// person's current assistance and employment facts in force on the subsidy month's last day), read along the
    /// store's person order instead of by key.
    async fn for_each_entitlement(
        &self,
        decision: &LinkageDecision,
        mut each: impl FnMut(PersonKey, String, Entitlement),
    ) -> Result<(), HubError> {
        let on: NaiveDate = decision.subsidy_month.last_day();
        let last = self.store.last_person_id().await?;
        let mut after = 0;
        while after < last {
            let through = after.saturating_add(ROSTER_SPAN).min(last);
            let rows = self.store.facts_in_person_range(on, &QUALIFYING_KINDS, after, through).await?;
            let mut rows = rows.into_iter().peekable();
            while let Some((person, first)) = rows.next() {
                let mut facts = vec![first];
                while let Some((_, f)) = rows.next_if(|(p, _)| *p == person) {
                    facts.push(f);
                }
                if let Some((division, e, _)) = entitlement_of_person(decision, &facts) {
                    each(facts[0].person_key, county_of(&division), e);
                }
            }
            after = through;
        }
        Ok(())
    }

    /// `ListEntitlements`: the persons owed for `subsidy_month` under `division_code` (a county office: its county),
    /// one page of the roster at a time (a page may hold fewer entitlements than `page_size`: persons owed nothing
    /// are skipped; go on while `next_page_token` is set). Audited: one event per page naming the persons listed.
    ///
    /// # Errors
    /// PERMISSION_DENIED without `read_entitlements` or outside the caller's county; INVALID_ARGUMENT for a bad
    /// purpose, page size or token; FAILED_PRECONDITION as [`Hub::linkage_decision`].
    pub async fn list_entitlements(
        &self,
        principal: &Principal,
        which: &CampaignRef,
        division: Option<DivisionCode>,
        page_size: usize,
        page_token: &str,
        purpose: &str,
    ) -> Result<EntitlementPage, HubError> {
        self.require_subsidy(principal, SubsidyRight::ReadEntitlements, "list subsidy entitlements")?;
        let purpose = super::check_purpose(purpose)?;
        let prefix = storage_prefix(scoped_prefix(principal, division)?);
        let page_size = self.page_size(page_size)?;
        let decision = self.decision_of(which).await?;
        let subsidy_month = decision.decision.subsidy_month;
        let on = subsidy_month.last_day();
        let filter = PersonFilter { division_prefix: prefix, program: None, as_of: on };
        // A token of this list and campaign only (not of ListRecipients over the same filter).
        let fingerprint = filter_fingerprint(&PersonFilter {
            program: Some(format!("SUBSIDY_ENTITLEMENTS {}", decision.decision.rule_version)),
            ..filter.clone()
        });
        let after = decode_page_token(&self.keys, principal, page_token, &fingerprint)?;
        let mut listed = self.store.list_persons(&filter, after, page_size + 1).await?;
        let more = listed.len() > page_size;
        listed.truncate(page_size);
        let next_page_token = match (more, listed.last()) {
            (true, Some((last, _))) => encode_page_token(&self.keys, principal, *last, &fingerprint),
            _ => String::new(),
        };
        let keys: Vec<PersonKey> = listed.into_iter().map(|(_, k)| k).collect();
        // A person is listed by the division that owes the payment (the division of the fact it rests on), as
        // SummarizeLinkage counts them: someone with facts in two counties is on one county's list only.
        let mut owed = self.entitlements_of(&decision.decision, &keys).await?;
        owed.retain(|(_, division, ..)| division.starts_with(filter.division_prefix.as_str()));
        let owed_keys: Vec<PersonKey> = owed.iter().map(|(k, ..)| *k).collect();
        let ciphers = self.store.person_ciphers(&owed_keys).await?;
        let mut entitlements = Vec::with_capacity(owed.len());
        for (k, division, entitlement, facts) in owed {
            let cipher = ciphers.get(&k).ok_or(crate::security::crypto::KeyError::Decrypt)?;
            let id_number = self.keys.decrypt(cipher, &k)?;
            let county_code = county_of(&division);
            entitlements.push(EntitlementView { id_number, county_code, entitlement, facts });
        }
        let audit = audit_of(
            principal,
            "ListEntitlements",
            purpose,
            format!(
                "OK campaign={} month={subsidy_month} listed={}",
                decision.decision.rule_version,
                entitlements.len()
            ),
            owed_keys,
        );
        self.store.record_audit(&audit).await?;
        Ok(EntitlementPage { decision, entitlements, next_page_token })
    }

    /// `SummarizeLinkage`: subsidy months `from ..= to` decided, and per county the persons, person-times and amount
    /// owed, against the counties' PRICE_SUBSIDY fund reports of the same months: MISSING when a triggered month has
    /// no report, MISMATCH when the reported and owed sums differ by more than the tolerance (`fund_report_tolerance`,
    /// per month). Aggregates only (no audit event); a county office sees its county's row.
    ///
    /// # Errors
    /// PERMISSION_DENIED without `decide_linkage` and aggregates; INVALID_ARGUMENT when `to` is before `from` or the
    /// range exceeds [`MAX_CAMPAIGN_MONTHS`]; FAILED_PRECONDITION as [`Hub::linkage_decision`] for any month.
    pub async fn summarize_linkage(
        &self,
        principal: &Principal,
        from: Month,
        to: Month,
    ) -> Result<CampaignSummary, HubError> {
        self.require_subsidy(principal, SubsidyRight::DecideLinkage, "summarize the price-subsidy linkage")?;
        if !self.policy.may_read_aggregates(principal.agency()) {
            return Err(HubError::PermissionDenied(format!("agency {} may not read aggregates", principal.agency())));
        }
        if to < from {
            return Err(HubError::invalid("to_month", format!("{to} is before from_month {from}")));
        }
        let mut months = vec![from];
        while let Some(&last) = months.last() {
            if last >= to {
                break;
            }
            months.push(last.next());
            if months.len() > MAX_CAMPAIGN_MONTHS {
                return Err(HubError::invalid(
                    "to_month",
                    format!("more than {MAX_CAMPAIGN_MONTHS} months from {from}"),
                ));
            }
        }
        let mut decided = Vec::with_capacity(months.len());
        for m in &months {
            decided.push(self.linkage_decision(*m).await?);
        }
        self.county_figures(Some(principal), decided).await
    }

    /// `SummarizeCampaign`: a fixed-amount campaign's county figures against the fund reports of its program and
    /// month, as [`Hub::summarize_linkage`] gives them for the linkage.
    ///
    /// # Errors
    /// PERMISSION_DENIED without `decide_linkage` and aggregates; NOT_FOUND for an unknown code.
    pub async fn summarize_campaign(&self, principal: &Principal, code: &str) -> Result<CampaignSummary, HubError> {
        self.require_subsidy(principal, SubsidyRight::DecideLinkage, "summarize subsidy campaigns")?;
        if !self.policy.may_read_aggregates(principal.agency()) {
            return Err(HubError::PermissionDenied(format!("agency {} may not read aggregates", principal.agency())));
        }
        let d = self.campaign_decision(code).await?;
        self.county_figures(Some(principal), vec![d]).await
    }

    /// Per county over the `decided` months: persons, person-times and amount owed against the latest fund report of
    /// each month (of each decision's program); rows outside `scope`'s county left out (`None`: every county).
    async fn county_figures(
        &self,
        scope: Option<&Principal>,
        decided: Vec<DecisionView>,
    ) -> Result<CampaignSummary, HubError> {
        let tolerance = self.limits.fund_report_tolerance;
        #[derive(Default)]
        struct Acc {
            persons: std::collections::BTreeSet<PersonKey>,
            person_times: u64,
            owed: Money,
            reported: Option<Money>,
            missing: bool,
            mismatch: bool,
        }
        let mut acc: BTreeMap<String, Acc> =
            QINGYANG_COUNTIES.iter().map(|(c, _)| ((*c).to_owned(), Acc::default())).collect();
        for d in &decided {
            let m = &d.decision.subsidy_month;
            let mut owed_month: BTreeMap<String, Money> = BTreeMap::new();
            if d.decision.triggered {
                self.for_each_entitlement(&d.decision, |k, county, e| {
                    let a = acc.entry(county.clone()).or_default();
                    a.persons.insert(k);
                    a.person_times += 1;
                    a.owed += e.total();
                    *owed_month.entry(county).or_default() += e.total();
                })
                .await?;
            }
            let reports = self.store.fund_reports(*m, Some(d.fund_program.as_str())).await?;
            for (county, a) in acc.iter_mut() {
                let latest = reports.iter().filter(|r| &r.county_code == county).max_by_key(|r| r.version);
                let owed = owed_month.get(county).copied().unwrap_or_default();
                match latest {
                    Some(r) => {
                        let amount = Money::parse(&r.amount).map_err(|e| {
                            HubError::Store(StoreError::Corrupt { table: "fund_reports", detail: e.to_string() })
                        })?;
                        a.reported = Some(a.reported.unwrap_or_default() + amount);
                        if (amount.to_fen() - owed.to_fen()).abs() > tolerance.to_fen() {
                            a.mismatch = true;
                        }
                    }
                    None if d.decision.triggered && !owed.is_zero() => a.missing = true,
                    None => {}
                }
            }
        }
        let counties = acc
            .into_iter()
            .filter(|(c, _)| scope.is_none_or(|p| c.parse::<DivisionCode>().is_ok_and(|d| p.in_scope(&d))))
            .map(|(county_code, a)| CountyCampaign {
                county_code,
                persons: a.persons.len() as u64,
                person_times: a.person_times,
                amount_owed: a.owed,
                amount_reported: a.reported,
                finding: if a.missing {
                    "MISSING".into()
                } else if a.mismatch {
                    "MISMATCH".into()
                } else {
                    String::new()
                },
            })
            .collect();
        Ok(CampaignSummary { months: decided, counties, tolerance })
    }
}

/// The payload kinds that can qualify a person for a subsidy (`domain::subsidy::qualifications`): the other kinds
/// are not read.
const QUALIFYING_KINDS: [crate::domain::fact::PayloadKind; 2] =
    [crate::domain::fact::PayloadKind::Assistance, crate::domain::fact::PayloadKind::Employment];

/// Persons (by `person_id`) a roster pass reads at a time: about 20,000 fact rows at the demo's mix.
const ROSTER_SPAN: i64 = 16_384;

/// One person's entitlement under `decision` from `facts` (theirs, in force on the subsidy month's last day): the
/// division code of the first payment's fact (its first six digits are the county that owes the payment), the
/// entitlement, and the fact (`agency/fact_id@version`) behind each considered payment; `None` when owed nothing.
fn entitlement_of_person(
    decision: &LinkageDecision,
    facts: &[StoredFact],
) -> Option<(String, Entitlement, Vec<String>)> {
    let mut quals: Vec<Qualification> = Vec::new();
    let mut refs: Vec<(Qualification, String, String)> = Vec::new();
    for f in facts {
        for q in qualifications(std::slice::from_ref(&f.payload)) {
            let reference = format!("{}/{}@{}", f.agency, f.fact_id, f.source_version);
            refs.push((q.clone(), reference, f.division_code.clone()));
            quals.push(q);
        }
    }
    let e = entitlement(decision, &quals)?;
    let fact_of = |p: &crate::domain::subsidy::Payment| {
        refs.iter()
            .find(|(q, _, _)| q.group == p.group && q.residence == p.residence && q.basis == p.basis)
            .map(|(_, r, c)| (r.clone(), c.clone()))
            .unwrap_or_default()
    };
    let facts: Vec<String> = e.considered.iter().map(|p| fact_of(p).0).collect();
    let division = e.payments.first().map(|p| fact_of(p).1).unwrap_or_default();
    Some((division, e, facts))
}

/// The county (first six digits) of a division code.
fn county_of(division: &str) -> String {
    division.get(..6).unwrap_or(division).to_owned()
}

impl Hub {
    /// The campaigns of `month` for the monthly report (no rights checked: callers do): the price-subsidy linkage
    /// when a rule version covers its index month and the index is stored (otherwise nothing: the month is not
    /// decided), and every fixed-amount campaign of the month; one row per campaign and county, every county.
    pub(crate) async fn campaign_rows(&self, month: Month) -> Result<Vec<CampaignRow>, HubError> {
        let mut decided = Vec::new();
        match self.linkage_decision(month).await {
            Ok(d) => decided.push(d),
            Err(HubError::FailedPrecondition(_)) => {}
            Err(e) => return Err(e),
        }
        for c in self.store.fixed_campaigns().await? {
            if c.campaign.month == month {
                decided.push(self.campaign_decision(&c.campaign.code).await?);
            }
        }
        let mut rows = Vec::new();
        for d in decided {
            let (campaign, program, triggered) =
                (d.decision.rule_version.clone(), d.fund_program.as_str().to_owned(), d.decision.triggered);
            for c in self.county_figures(None, vec![d]).await?.counties {
                rows.push(CampaignRow {
                    campaign: campaign.clone(),
                    program: program.clone(),
                    triggered,
                    county_code: c.county_code,
                    persons: c.persons,
                    amount_owed: c.amount_owed,
                    amount_reported: c.amount_reported,
                    finding: c.finding,
                });
            }
        }
        Ok(rows)
    }
}

/// Add a linkage rule version (`rule_json`: the shape of [`crate::domain::subsidy::LinkageRule`], as
/// `doudi subsidies rule show --json` prints it) with its `source`, audited in the same transaction
/// (`doudi subsidies rule add`).
///
/// # Errors
/// INVALID_ARGUMENT for `rule_json` (too large, not the shape, a rule of `LinkageRule::from_json`, named
/// `rule_json.<field>`) or `source` (empty, longer than 200 characters, several lines); ALREADY_EXISTS when the
/// version label or its first index month is taken (versions are never overwritten).
pub async fn add_linkage_rule(
    store: &crate::store::Store,
    actor: &crate::domain::admin::Actor,
    rule_json: &str,
    source: &str,
) -> Result<crate::domain::subsidy::LinkageRule, HubError> {
    use crate::domain::admin::{AdminEvent, NO_STATE, state_hash};
    super::admin::bounded("rule_json", rule_json, super::admin::MAX_TEXT_BYTES)?;
    let rule = crate::domain::subsidy::LinkageRule::from_json(rule_json)
        .map_err(|e| HubError::invalid(format!("rule_json.{}", e.field), e.reason))?;
    let source = super::admin::line("source", source, super::admin::MAX_SOURCE_CHARS)?;
    let json = serde_json::to_string(&rule).map_err(|e| HubError::invalid("rule_json", e.to_string()))?;
    let audit = AdminEvent {
        actor,
        command: "doudi subsidies rule add",
        args: format!("version={}; effective_from={}; source={source}", rule.version, rule.effective_from),
        detail: format!("linkage rule version {} added", rule.version),
        before: NO_STATE.to_owned(),
        after: state_hash(&[&json, &source]),
    }
    .record();
    let stored = crate::store::StoredLinkageRule { rule: rule.clone(), source };
    if !store.add_linkage_rule(&stored, Some(&audit)).await? {
        return Err(HubError::AlreadyExists(format!(
            "linkage rule version {:?} or one from index month {} is already held (versions are never overwritten)",
            rule.version, rule.effective_from
        )));
    }
    Ok(rule)
}

/// Add a fixed-amount campaign (`campaign_json`: the shape of [`crate::domain::subsidy::FixedCampaign`]) with its
/// `source`, audited in the same transaction (`doudi subsidies campaign add`).
///
/// # Errors
/// INVALID_ARGUMENT for `campaign_json` (too large, not the shape, a rule of `FixedCampaign::from_json`, named
/// `campaign_json.<field>`) or `source`; ALREADY_EXISTS when the code is taken (campaigns are never overwritten).
pub async fn add_fixed_campaign(
    store: &crate::store::Store,
    actor: &crate::domain::admin::Actor,
    campaign_json: &str,
    source: &str,
) -> Result<crate::domain::subsidy::FixedCampaign, HubError> {
    use crate::domain::admin::{AdminEvent, NO_STATE, state_hash};
    super::admin::bounded("campaign_json", campaign_json, super::admin::MAX_TEXT_BYTES)?;
    let campaign = crate::domain::subsidy::FixedCampaign::from_json(campaign_json)
        .map_err(|e| HubError::invalid(format!("campaign_json.{}", e.field), e.reason))?;
    let source = super::admin::line("source", source, super::admin::MAX_SOURCE_CHARS)?;
    let json = serde_json::to_string(&campaign).map_err(|e| HubError::invalid("campaign_json", e.to_string()))?;
    let audit = AdminEvent {
        actor,
        command: "doudi subsidies campaign add",
        args: format!("code={}; month={}; source={source}", campaign.code, campaign.month),
        detail: format!("fixed-amount campaign {} added", campaign.code),
        before: NO_STATE.to_owned(),
        after: state_hash(&[&json, &source]),
    }
    .record();
    let stored = crate::store::StoredFixedCampaign { campaign: campaign.clone(), source };
    if !store.add_fixed_campaign(&stored, &audit).await? {
        return Err(HubError::AlreadyExists(format!(
            "fixed-amount campaign {:?} is already held (campaigns are never overwritten)",
            campaign.code
        )));
    }
    Ok(campaign)
}
