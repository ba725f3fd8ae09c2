//! Facts: the typed, versioned statements an agency makes about a person (docs/spec/api.md, "A `Fact` has").
//!
//! A fact belongs to the agency that pushed it and is identified by `(agency, fact_id)`; each change
//! of the source record raises `source_version`. Business validity is `[valid_from, valid_to)`
//! (dates in Asia/Shanghai, `valid_to` exclusive and optional). The hub adds the system time
//! (`recorded_at`) when it stores a version.
//!
//! Every payload field is an `Option` so that the access policy can leave fields out of a read
//! (docs/spec/security.md, "Access by need") with one generic mechanism; what a *push* must carry is checked
//! by [`Fact::validate`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::division::DivisionCode;
use super::id_number::IdNumber;
use super::money::Money;

/// A field-level validation failure: `field` is a path relative to the fact
/// (`"assistance.rural_class"`, `"valid_to"`), `reason` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable snake/upper-case code used in storage and configuration.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// Inverse of [`Self::as_str`].
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

/// Shared with the other domain modules' string-coded enums.
pub(crate) use string_enum;

string_enum!(
    /// The eight payload kinds of docs/spec/api.md; each has one owning agency (see the access policy).
    PayloadKind {
        Assistance = "assistance",
        Employment = "employment",
        Pension = "pension",
        Student = "student",
        EducationAid = "education_aid",
        MedicalInsurance = "medical_insurance",
        Disability = "disability",
        DisabilitySubsidy = "disability_subsidy",
    }
);

string_enum!(
    /// Assistance programs (docs/spec/api.md `assistance.program`; the letter's categories,
    /// docs/domain/qingyang-figures.md §2).
    Program {
        Dibao = "DIBAO",
        Tekun = "TEKUN",
        DibaoMarginal = "DIBAO_MARGINAL",
        AtRisk = "AT_RISK",
        ExpenditureHardship = "EXPENDITURE_HARDSHIP",
        Orphan = "ORPHAN",
        UnsupportedChild = "UNSUPPORTED_CHILD",
        HivAffectedChild = "HIV_AFFECTED_CHILD",
        IllnessImpoverished = "ILLNESS_IMPOVERISHED",
    }
);

string_enum!(
    /// Urban or rural registration of an assistance enrolment.
    Residence { Urban = "URBAN", Rural = "RURAL" }
);

string_enum!(
    /// Urban dibao: full-amount (全额保障) or gap-filling (差额保障) recipient.
    UrbanMode { Full = "FULL", Gap = "GAP" }
);

string_enum!(
    /// Tekun support: centralized (集中供养) or dispersed (分散供养).
    SupportMode { Centralized = "CENTRALIZED", Dispersed = "DISPERSED" }
);

string_enum!(
    /// State of an assistance enrolment.
    AssistanceStatus { Active = "ACTIVE", Suspended = "SUSPENDED", Terminated = "TERMINATED" }
);

string_enum!(
    /// Employment status reported by human resources.
    EmploymentStatus {
        Employed = "EMPLOYED",
        RegisteredUnemployed = "REGISTERED_UNEMPLOYED",
        PublicWelfareJob = "PUBLIC_WELFARE_JOB",
        Flexible = "FLEXIBLE",
        NotInLabourForce = "NOT_IN_LABOUR_FORCE",
    }
);

string_enum!(
    /// Unemployment benefit reported by human resources on an `employment` fact (issue 18 item 3; docs/subsidies.md):
    /// 失业保险金 (unemployment insurance benefit, covered by the price-subsidy linkage since 发改价格〔2021〕1553号) or
    /// 失业补助金 (unemployment subsidy, covered for the indices of Aug 2022 – Feb 2023 by the 2022-08-31 notice).
    UnemploymentBenefit {
        None = "NONE",
        InsuranceBenefit = "INSURANCE_BENEFIT",
        UnemploymentSubsidy = "UNEMPLOYMENT_SUBSIDY",
    }
);

string_enum!(
    /// School stage reported by education.
    Stage {
        Preschool = "PRESCHOOL",
        Primary = "PRIMARY",
        JuniorSecondary = "JUNIOR_SECONDARY",
        SeniorSecondary = "SENIOR_SECONDARY",
        Vocational = "VOCATIONAL",
        Higher = "HIGHER",
    }
);

string_enum!(
    /// Kind of education aid (助学).
    AidType {
        LivingAllowance = "LIVING_ALLOWANCE",
        TuitionWaiver = "TUITION_WAIVER",
        NationalGrant = "NATIONAL_GRANT",
        StudentLoan = "STUDENT_LOAN",
        Other = "OTHER",
    }
);

string_enum!(
    /// Medical insurance scheme: resident (城乡居民) or employee (职工).
    Scheme { Resident = "RESIDENT", Employee = "EMPLOYEE" }
);

string_enum!(
    /// Premium subsidy granted on a medical-insurance enrolment.
    PremiumSubsidy { Full = "FULL", Partial = "PARTIAL", None = "NONE" }
);

string_enum!(
    /// Disability category; the digit is the 19th character of a second-generation
    /// certificate number (docs/domain/policy-reference.md, "Disability certificate").
    DisabilityCategory {
        Visual = "VISUAL",
        Hearing = "HEARING",
        Speech = "SPEECH",
        Physical = "PHYSICAL",
        Intellectual = "INTELLECTUAL",
        Mental = "MENTAL",
        Multiple = "MULTIPLE",
    }
);

impl DisabilityCategory {
    /// Certificate digit 1–7 (1 视力 … 7 多重).
    pub fn digit(self) -> u8 {
        match self {
            Self::Visual => 1,
            Self::Hearing => 2,
            Self::Speech => 3,
            Self::Physical => 4,
            Self::Intellectual => 5,
            Self::Mental => 6,
            Self::Multiple => 7,
        }
    }
}

/// `assistance` payload, owned by civil affairs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Assistance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<Program>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence: Option<Residence>,
    /// Rural dibao class 1–4 (一类…四类); only on rural dibao.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rural_class: Option<u8>,
    /// Only on urban dibao.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urban_mode: Option<UrbanMode>,
    /// Only on tekun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_mode: Option<SupportMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<String>,
    /// Yuan per person per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_benefit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AssistanceStatus>,
}

/// `employment` payload, owned by human resources.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Employment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EmploymentStatus>,
    /// Optional (absent = not reported; existing facts keep their content hash). A benefit other than `NONE` needs
    /// `status` REGISTERED_UNEMPLOYED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unemployment_benefit: Option<UnemploymentBenefit>,
}

/// `pension` payload (resident pension, 城乡居民养老保险), owned by human resources.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pension {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled: Option<bool>,
    /// Premium paid by the government on the person's behalf (代缴).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_paid_by_government: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving: Option<bool>,
    /// Yuan per month, when receiving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_pension: Option<Money>,
}

/// `student` payload, owned by education.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Student {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_code: Option<String>,
}

/// `education_aid` payload, owned by education.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EducationAid {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aid_type: Option<AidType>,
    /// Yuan per school year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_amount: Option<Money>,
}

/// `medical_insurance` payload, owned by medical insurance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MedicalInsurance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// Insurance (calendar) year covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_subsidy: Option<PremiumSubsidy>,
    /// Yuan per person for the year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsidy_amount: Option<Money>,
}

/// `disability` payload (残疾人证), owned by the disabled persons' federation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Disability {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<DisabilityCategory>,
    /// 1 (most severe) to 4; grades 1–2 are "severe" (重度).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<u8>,
    /// Second-generation number: 18-character ID number + category digit + grade digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_no: Option<String>,
}

/// `disability_subsidy` payload, owned by the disabled persons' federation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DisabilitySubsidy {
    /// 困难残疾人生活补贴, yuan per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub living_subsidy: Option<Money>,
    /// 重度残疾人护理补贴, yuan per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nursing_subsidy: Option<Money>,
}

/// One of the eight payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Assistance(Assistance),
    Employment(Employment),
    Pension(Pension),
    Student(Student),
    EducationAid(EducationAid),
    MedicalInsurance(MedicalInsurance),
    Disability(Disability),
    DisabilitySubsidy(DisabilitySubsidy),
}

impl Payload {
    /// The payload's money fields with their paths (as validation names them), set or not.
    pub fn amounts(&self) -> Vec<(&'static str, Option<Money>)> {
        match self {
            Payload::Assistance(a) => vec![("assistance.monthly_benefit", a.monthly_benefit)],
            Payload::Pension(p) => vec![("pension.monthly_pension", p.monthly_pension)],
            Payload::EducationAid(e) => vec![("education_aid.annual_amount", e.annual_amount)],
            Payload::MedicalInsurance(m) => vec![("medical_insurance.subsidy_amount", m.subsidy_amount)],
            Payload::DisabilitySubsidy(d) => vec![
                ("disability_subsidy.living_subsidy", d.living_subsidy),
                ("disability_subsidy.nursing_subsidy", d.nursing_subsidy),
            ],
            Payload::Employment(_) | Payload::Student(_) | Payload::Disability(_) => Vec::new(),
        }
    }

    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Assistance(_) => PayloadKind::Assistance,
            Payload::Employment(_) => PayloadKind::Employment,
            Payload::Pension(_) => PayloadKind::Pension,
            Payload::Student(_) => PayloadKind::Student,
            Payload::EducationAid(_) => PayloadKind::EducationAid,
            Payload::MedicalInsurance(_) => PayloadKind::MedicalInsurance,
            Payload::Disability(_) => PayloadKind::Disability,
            Payload::DisabilitySubsidy(_) => PayloadKind::DisabilitySubsidy,
        }
    }

    /// Canonical JSON of the payload's fields (keys in declaration order, absent fields omitted).
    /// This is the stored form and the input of the content hash.
    pub fn to_json(&self) -> String {
        let r = match self {
            Payload::Assistance(p) => serde_json::to_string(p),
            Payload::Employment(p) => serde_json::to_string(p),
            Payload::Pension(p) => serde_json::to_string(p),
            Payload::Student(p) => serde_json::to_string(p),
            Payload::EducationAid(p) => serde_json::to_string(p),
            Payload::MedicalInsurance(p) => serde_json::to_string(p),
            Payload::Disability(p) => serde_json::to_string(p),
            Payload::DisabilitySubsidy(p) => serde_json::to_string(p),
        };
        // Serializing plain structs of strings, numbers and bools cannot fail.
        r.expect("payload serializes")
    }

    /// Inverse of [`Self::to_json`].
    pub fn from_json(kind: PayloadKind, json: &str) -> Result<Payload, serde_json::Error> {
        Ok(match kind {
            PayloadKind::Assistance => Payload::Assistance(serde_json::from_str(json)?),
            PayloadKind::Employment => Payload::Employment(serde_json::from_str(json)?),
            PayloadKind::Pension => Payload::Pension(serde_json::from_str(json)?),
            PayloadKind::Student => Payload::Student(serde_json::from_str(json)?),
            PayloadKind::EducationAid => Payload::EducationAid(serde_json::from_str(json)?),
            PayloadKind::MedicalInsurance => Payload::MedicalInsurance(serde_json::from_str(json)?),
            PayloadKind::Disability => Payload::Disability(serde_json::from_str(json)?),
            PayloadKind::DisabilitySubsidy => Payload::DisabilitySubsidy(serde_json::from_str(json)?),
        })
    }

    /// The stored form. A disability certificate number is the holder's ID number followed by the
    /// category and grade digits (checked by [`Fact::validate`]), so only those two digits are
    /// stored: no full ID number is ever written in clear. [`Payload::with_holder`] restores it.
    pub fn storage_form(&self) -> Payload {
        match self {
            Payload::Disability(d) => {
                let mut d = d.clone();
                if let Some(no) = &d.certificate_no
                    && no.len() == 20
                {
                    d.certificate_no = Some(no[18..].to_owned());
                }
                Payload::Disability(d)
            }
            other => other.clone(),
        }
    }

    /// Inverse of [`Payload::storage_form`] for the holder `id`.
    pub fn with_holder(self, id: &IdNumber) -> Payload {
        match self {
            Payload::Disability(mut d) => {
                if let Some(suffix) = &d.certificate_no
                    && suffix.len() == 2
                {
                    d.certificate_no = Some(format!("{}{suffix}", id.as_str()));
                }
                Payload::Disability(d)
            }
            other => other,
        }
    }

    /// Keep only the named fields (the access policy's field list); `None` keeps everything.
    /// Returns the payload and the names of the fields that were removed.
    pub fn retain_fields(&self, allowed: Option<&[String]>) -> (Payload, Vec<String>) {
        let Some(allowed) = allowed else { return (self.clone(), Vec::new()) };
        let mut value: serde_json::Value = serde_json::from_str(&self.to_json()).expect("own JSON parses");
        let mut removed = Vec::new();
        if let Some(map) = value.as_object_mut() {
            map.retain(|k, _| {
                let keep = allowed.iter().any(|a| a == k);
                if !keep {
                    removed.push(k.clone());
                }
                keep
            });
        }
        let payload = Payload::from_json(self.kind(), &value.to_string()).expect("a subset of own fields parses");
        (payload, removed)
    }
}

/// A fact as pushed by an agency, parsed and field-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// The source system's record id, unique per agency (1–128 characters).
    pub fact_id: String,
    /// Rises with each change of the source record.
    pub source_version: u64,
    pub id_number: IdNumber,
    pub division_code: DivisionCode,
    pub valid_from: NaiveDate,
    /// Exclusive end of business validity; `None` = open-ended.
    pub valid_to: Option<NaiveDate>,
    pub payload: Payload,
}

/// Longest accepted `fact_id` / free-text identifier, in characters.
pub const MAX_ID_LEN: usize = 128;

fn require<T>(v: &Option<T>, field: &str) -> Result<(), FieldError> {
    if v.is_none() { Err(FieldError::new(field, "is required")) } else { Ok(()) }
}

fn short_text(v: &Option<String>, field: &str) -> Result<(), FieldError> {
    if let Some(s) = v
        && s.chars().count() > MAX_ID_LEN
    {
        return Err(FieldError::new(field, format!("is longer than {MAX_ID_LEN} characters")));
    }
    Ok(())
}

impl Fact {
    /// Whether the fact is in force on `date` (business time): `valid_from <= date < valid_to`.
    pub fn in_force_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| date < to)
    }

    /// Cross-field rules of docs/spec/api.md for a pushed fact. Field names are relative to the fact.
    ///
    /// Errors: `fact_id` empty or too long; `valid_to` not after `valid_from`; required payload
    /// fields missing; `rural_class` outside 1–4 or on anything but rural dibao; `urban_mode` on
    /// anything but urban dibao; `support_mode` on anything but tekun; disability `grade` outside
    /// 1–4; a certificate number that is not the holder's ID number + category digit + grade digit.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (field, value) in self.payload.amounts() {
            if let Some(v) = value {
                super::money_limits::check(field, v).map_err(|e| FieldError::new(field, e))?;
            }
        }
        if self.fact_id.is_empty() {
            return Err(FieldError::new("fact_id", "is required"));
        }
        if self.fact_id.chars().count() > MAX_ID_LEN {
            return Err(FieldError::new("fact_id", format!("is longer than {MAX_ID_LEN} characters")));
        }
        if let Some(to) = self.valid_to
            && to <= self.valid_from
        {
            return Err(FieldError::new(
                "valid_to",
                format!("{to} is not after valid_from {} (valid_to is exclusive)", self.valid_from),
            ));
        }
        match &self.payload {
            Payload::Assistance(a) => validate_assistance(a),
            Payload::Employment(e) => {
                require(&e.status, "employment.status")?;
                match e.unemployment_benefit {
                    Some(b)
                        if b != UnemploymentBenefit::None
                            && e.status != Some(EmploymentStatus::RegisteredUnemployed) =>
                    {
                        Err(FieldError::new(
                            "employment.unemployment_benefit",
                            format!("{b} needs status REGISTERED_UNEMPLOYED"),
                        ))
                    }
                    _ => Ok(()),
                }
            }
            Payload::Pension(p) => require(&p.enrolled, "pension.enrolled"),
            Payload::Student(s) => {
                require(&s.stage, "student.stage")?;
                short_text(&s.school_code, "student.school_code")
            }
            Payload::EducationAid(e) => {
                require(&e.aid_type, "education_aid.aid_type")?;
                require(&e.annual_amount, "education_aid.annual_amount")
            }
            Payload::MedicalInsurance(m) => {
                require(&m.scheme, "medical_insurance.scheme")?;
                require(&m.premium_subsidy, "medical_insurance.premium_subsidy")?;
                match m.year {
                    None => Err(FieldError::new("medical_insurance.year", "is required")),
                    Some(y) if !(1990..=2100).contains(&y) => {
                        Err(FieldError::new("medical_insurance.year", format!("{y} is outside 1990–2100")))
                    }
                    Some(_) => Ok(()),
                }
            }
            Payload::Disability(d) => self.validate_disability(d),
            Payload::DisabilitySubsidy(s) => {
                if s.living_subsidy.is_none() && s.nursing_subsidy.is_none() {
                    Err(FieldError::new("disability_subsidy", "needs living_subsidy or nursing_subsidy"))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn validate_disability(&self, d: &Disability) -> Result<(), FieldError> {
        let category = d.category.ok_or_else(|| FieldError::new("disability.category", "is required"))?;
        let grade = d.grade.ok_or_else(|| FieldError::new("disability.grade", "is required"))?;
        if !(1..=4).contains(&grade) {
            return Err(FieldError::new("disability.grade", format!("{grade} is outside 1–4")));
        }
        if let Some(no) = &d.certificate_no {
            let expected = format!("{}{}{}", self.id_number.as_str(), category.digit(), grade);
            if !no.eq_ignore_ascii_case(&expected) {
                return Err(FieldError::new(
                    "disability.certificate_no",
                    "must be the holder's 18-character ID number followed by the category digit and the grade digit",
                ));
            }
        }
        Ok(())
    }
}

fn validate_assistance(a: &Assistance) -> Result<(), FieldError> {
    let program = a.program.ok_or_else(|| FieldError::new("assistance.program", "is required"))?;
    require(&a.status, "assistance.status")?;
    short_text(&a.household_id, "assistance.household_id")?;
    let rural_dibao = program == Program::Dibao && a.residence == Some(Residence::Rural);
    let urban_dibao = program == Program::Dibao && a.residence == Some(Residence::Urban);
    if matches!(program, Program::Dibao | Program::Tekun) {
        require(&a.residence, "assistance.residence")?;
        require(&a.monthly_benefit, "assistance.monthly_benefit")?;
    }
    match a.rural_class {
        Some(c) if !rural_dibao => {
            return Err(FieldError::new(
                "assistance.rural_class",
                format!("class {c} given, but rural_class applies to rural dibao only"),
            ));
        }
        Some(c) if !(1..=4).contains(&c) => {
            return Err(FieldError::new("assistance.rural_class", format!("{c} is outside 1–4")));
        }
        None if rural_dibao => {
            return Err(FieldError::new("assistance.rural_class", "is required for rural dibao"));
        }
        _ => {}
    }
    if a.urban_mode.is_some() && !urban_dibao {
        return Err(FieldError::new("assistance.urban_mode", "applies to urban dibao only"));
    }
    if urban_dibao {
        require(&a.urban_mode, "assistance.urban_mode")?;
    }
    if a.support_mode.is_some() && program != Program::Tekun {
        return Err(FieldError::new("assistance.support_mode", "applies to tekun only"));
    }
    if program == Program::Tekun {
        require(&a.support_mode, "assistance.support_mode")?;
    }
    Ok(())
}
