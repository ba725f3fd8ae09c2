//! Conversions between protobuf messages and domain values ("parse, don't validate").
//! Wire → domain conversions return a [`FieldError`] whose field is the proto field path
//! relative to the fact.

use chrono::{DateTime, NaiveDate, Utc};

use super::pb;
use crate::domain::calendar::parse_date;
use crate::domain::division::DivisionCode;
use crate::domain::fact::*;
use crate::domain::id_number::IdNumber;
use crate::domain::money::Money;

fn fe(field: &str, reason: impl std::fmt::Display) -> FieldError {
    FieldError::new(field, reason.to_string())
}

/// A wire enum (i32) → domain value; 0 (UNSPECIFIED) → `None`; unknown numbers are an error.
fn enum_in<P, D>(v: i32, field: &str, map: impl Fn(P) -> Option<D>) -> Result<Option<D>, FieldError>
where
    P: TryFrom<i32>,
{
    if v == 0 {
        return Ok(None);
    }
    let p = P::try_from(v).map_err(|_| fe(field, format!("unknown enum value {v}")))?;
    Ok(map(p))
}

fn money_in(s: &str, field: &str) -> Result<Option<Money>, FieldError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<Money>().map(Some).map_err(|e| fe(field, format!("{e} (money is decimal yuan like \"607.00\")")))
}

/// Earliest and latest business date accepted (a guard against typos such as year 0 or 9999).
pub const MIN_DATE: (i32, u32, u32) = (1900, 1, 1);
pub const MAX_DATE: (i32, u32, u32) = (2099, 12, 31);

fn date_bounds_check(d: NaiveDate, field: &str) -> Result<NaiveDate, FieldError> {
    let min = NaiveDate::from_ymd_opt(MIN_DATE.0, MIN_DATE.1, MIN_DATE.2).expect("valid constant");
    let max = NaiveDate::from_ymd_opt(MAX_DATE.0, MAX_DATE.1, MAX_DATE.2).expect("valid constant");
    if d < min || d > max {
        return Err(fe(field, format!("{d} is outside {min} to {max}")));
    }
    Ok(d)
}

fn parse_bounded_date(s: &str, field: &str) -> Result<NaiveDate, FieldError> {
    date_bounds_check(parse_date(s).map_err(|e| fe(field, e))?, field)
}

/// An identifier-like text: no control characters, not only spaces.
fn check_text(s: &str, field: &str) -> Result<(), FieldError> {
    if s.chars().any(char::is_control) {
        return Err(fe(field, "contains a control character"));
    }
    if !s.is_empty() && s.trim().is_empty() {
        return Err(fe(field, "is blank"));
    }
    Ok(())
}

fn text_in(s: &str, field: &str) -> Result<Option<String>, FieldError> {
    check_text(s, field)?;
    Ok(if s.is_empty() { None } else { Some(s.to_owned()) })
}

fn money_out(m: Option<Money>) -> String {
    m.map(|m| m.to_string()).unwrap_or_default()
}

/// Parse an ID number field.
pub fn id_number_in(s: &str, field: &str) -> Result<IdNumber, FieldError> {
    if s.is_empty() {
        return Err(fe(field, "is required"));
    }
    s.parse::<IdNumber>().map_err(|e| fe(field, e))
}

/// Parse an optional business date (1900-01-01 to 2099-12-31); empty → `default`.
pub fn date_in(s: &str, field: &str, default: NaiveDate) -> Result<NaiveDate, FieldError> {
    if s.is_empty() {
        return Ok(default);
    }
    parse_bounded_date(s, field)
}

/// A stored instant in microseconds since the epoch on the wire (the epoch for one out of range).
pub fn timestamp_micros(us: i64) -> prost_types::Timestamp {
    timestamp(DateTime::from_timestamp_micros(us).unwrap_or_default())
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

macro_rules! enum_pair {
    ($fn_in:ident, $fn_out:ident, $pb:ty, $dom:ty, { $($p:ident <=> $d:ident),+ $(,)? }) => {
        fn $fn_in(p: $pb) -> Option<$dom> {
            match p { <$pb>::Unspecified => None, $(<$pb>::$p => Some(<$dom>::$d)),+ }
        }
        pub fn $fn_out(d: Option<$dom>) -> i32 {
            match d { None => <$pb>::Unspecified as i32, $(Some(<$dom>::$d) => <$pb>::$p as i32),+ }
        }
    };
}

enum_pair!(program_in, program_out, pb::Program, Program, {
    Dibao <=> Dibao, Tekun <=> Tekun, DibaoMarginal <=> DibaoMarginal, AtRisk <=> AtRisk,
    ExpenditureHardship <=> ExpenditureHardship, Orphan <=> Orphan, UnsupportedChild <=> UnsupportedChild,
    HivAffectedChild <=> HivAffectedChild, IllnessImpoverished <=> IllnessImpoverished,
});
enum_pair!(residence_in, residence_out, pb::Residence, Residence, { Urban <=> Urban, Rural <=> Rural });
enum_pair!(urban_mode_in, urban_mode_out, pb::UrbanMode, UrbanMode, { Full <=> Full, Gap <=> Gap });
enum_pair!(support_mode_in, support_mode_out, pb::SupportMode, SupportMode, {
    Centralized <=> Centralized, Dispersed <=> Dispersed,
});
enum_pair!(assistance_status_in, assistance_status_out, pb::AssistanceStatus, AssistanceStatus, {
    Active <=> Active, Suspended <=> Suspended, Terminated <=> Terminated,
});
enum_pair!(employment_status_in, employment_status_out, pb::EmploymentStatus, EmploymentStatus, {
    Employed <=> Employed, RegisteredUnemployed <=> RegisteredUnemployed, PublicWelfareJob <=> PublicWelfareJob,
    Flexible <=> Flexible, NotInLabourForce <=> NotInLabourForce,
});
enum_pair!(unemployment_benefit_in, unemployment_benefit_out, pb::UnemploymentBenefit, UnemploymentBenefit, {
    None <=> None, InsuranceBenefit <=> InsuranceBenefit, UnemploymentSubsidy <=> UnemploymentSubsidy,
});
enum_pair!(stage_in, stage_out, pb::Stage, Stage, {
    Preschool <=> Preschool, Primary <=> Primary, JuniorSecondary <=> JuniorSecondary,
    SeniorSecondary <=> SeniorSecondary, Vocational <=> Vocational, Higher <=> Higher,
});
enum_pair!(aid_type_in, aid_type_out, pb::AidType, AidType, {
    LivingAllowance <=> LivingAllowance, TuitionWaiver <=> TuitionWaiver, NationalGrant <=> NationalGrant,
    StudentLoan <=> StudentLoan, Other <=> Other,
});
enum_pair!(scheme_in, scheme_out, pb::Scheme, Scheme, { Resident <=> Resident, Employee <=> Employee });
enum_pair!(premium_subsidy_in, premium_subsidy_out, pb::PremiumSubsidy, PremiumSubsidy, {
    Full <=> Full, Partial <=> Partial, None <=> None,
});
enum_pair!(category_in, category_out, pb::DisabilityCategory, DisabilityCategory, {
    Visual <=> Visual, Hearing <=> Hearing, Speech <=> Speech, Physical <=> Physical,
    Intellectual <=> Intellectual, Mental <=> Mental, Multiple <=> Multiple,
});

/// The program filter of a list request.
pub fn program_filter(v: i32) -> Result<Option<Program>, FieldError> {
    enum_in(v, "program", program_in)
}

fn small(v: u32, field: &str) -> Result<u8, FieldError> {
    u8::try_from(v).map_err(|_| fe(field, format!("{v} is out of range")))
}

fn payload_in(p: pb::fact::Payload) -> Result<Payload, FieldError> {
    use pb::fact::Payload as P;
    Ok(match p {
        P::Assistance(a) => Payload::Assistance(Assistance {
            program: enum_in(a.program, "assistance.program", program_in)?,
            residence: enum_in(a.residence, "assistance.residence", residence_in)?,
            rural_class: a.rural_class.map(|c| small(c, "assistance.rural_class")).transpose()?,
            urban_mode: enum_in(a.urban_mode, "assistance.urban_mode", urban_mode_in)?,
            support_mode: enum_in(a.support_mode, "assistance.support_mode", support_mode_in)?,
            household_id: text_in(&a.household_id, "assistance.household_id")?,
            monthly_benefit: money_in(&a.monthly_benefit, "assistance.monthly_benefit")?,
            status: enum_in(a.status, "assistance.status", assistance_status_in)?,
        }),
        P::Employment(e) => Payload::Employment(Employment {
            status: enum_in(e.status, "employment.status", employment_status_in)?,
            unemployment_benefit: enum_in(
                e.unemployment_benefit,
                "employment.unemployment_benefit",
                unemployment_benefit_in,
            )?,
        }),
        P::Pension(p) => Payload::Pension(Pension {
            enrolled: Some(p.enrolled),
            premium_paid_by_government: Some(p.premium_paid_by_government),
            receiving: Some(p.receiving),
            monthly_pension: money_in(&p.monthly_pension, "pension.monthly_pension")?,
        }),
        P::Student(s) => Payload::Student(Student {
            stage: enum_in(s.stage, "student.stage", stage_in)?,
            school_code: text_in(&s.school_code, "student.school_code")?,
        }),
        P::EducationAid(e) => Payload::EducationAid(EducationAid {
            aid_type: enum_in(e.aid_type, "education_aid.aid_type", aid_type_in)?,
            annual_amount: money_in(&e.annual_amount, "education_aid.annual_amount")?,
        }),
        P::MedicalInsurance(m) => Payload::MedicalInsurance(MedicalInsurance {
            scheme: enum_in(m.scheme, "medical_insurance.scheme", scheme_in)?,
            year: if m.year == 0 {
                None
            } else {
                Some(
                    u16::try_from(m.year)
                        .map_err(|_| fe("medical_insurance.year", format!("{} is out of range", m.year)))?,
                )
            },
            premium_subsidy: enum_in(m.premium_subsidy, "medical_insurance.premium_subsidy", premium_subsidy_in)?,
            subsidy_amount: money_in(&m.subsidy_amount, "medical_insurance.subsidy_amount")?,
        }),
        P::Disability(d) => Payload::Disability(Disability {
            category: enum_in(d.category, "disability.category", category_in)?,
            grade: if d.grade == 0 { None } else { Some(small(d.grade, "disability.grade")?) },
            certificate_no: text_in(&d.certificate_no, "disability.certificate_no")?,
        }),
        P::DisabilitySubsidy(s) => Payload::DisabilitySubsidy(DisabilitySubsidy {
            living_subsidy: money_in(&s.living_subsidy, "disability_subsidy.living_subsidy")?,
            nursing_subsidy: money_in(&s.nursing_subsidy, "disability_subsidy.nursing_subsidy")?,
        }),
    })
}

/// Wire fact → domain fact. Field paths are relative to the fact.
pub fn fact_in(f: pb::Fact) -> Result<Fact, FieldError> {
    check_text(&f.fact_id, "fact_id")?;
    if f.source_version > i64::MAX as u64 {
        return Err(fe(
            "source_version",
            format!("{} exceeds the largest accepted version {}", f.source_version, i64::MAX),
        ));
    }
    let id_number = id_number_in(&f.id_number, "id_number")?;
    if f.division_code.is_empty() {
        return Err(fe("division_code", "is required"));
    }
    let division_code: DivisionCode = f.division_code.parse().map_err(|e| fe("division_code", e))?;
    if division_code.county().is_none() {
        return Err(fe("division_code", format!("{division_code} is not a county or a place within one")));
    }
    if f.valid_from.is_empty() {
        return Err(fe("valid_from", "is required"));
    }
    let valid_from = parse_bounded_date(&f.valid_from, "valid_from")?;
    let valid_to = if f.valid_to.is_empty() { None } else { Some(parse_bounded_date(&f.valid_to, "valid_to")?) };
    let payload =
        payload_in(f.payload.ok_or_else(|| fe("payload", "one payload is required (assistance, employment, …)"))?)?;
    Ok(Fact {
        fact_id: f.fact_id,
        source_version: f.source_version,
        id_number,
        division_code,
        valid_from,
        valid_to,
        payload,
    })
}

fn payload_out(p: &Payload) -> pb::fact::Payload {
    use pb::fact::Payload as P;
    match p {
        Payload::Assistance(a) => P::Assistance(pb::Assistance {
            program: program_out(a.program),
            residence: residence_out(a.residence),
            rural_class: a.rural_class.map(u32::from),
            urban_mode: urban_mode_out(a.urban_mode),
            support_mode: support_mode_out(a.support_mode),
            household_id: a.household_id.clone().unwrap_or_default(),
            monthly_benefit: money_out(a.monthly_benefit),
            status: assistance_status_out(a.status),
        }),
        Payload::Employment(e) => P::Employment(pb::Employment {
            status: employment_status_out(e.status),
            unemployment_benefit: unemployment_benefit_out(e.unemployment_benefit),
        }),
        Payload::Pension(p) => P::Pension(pb::Pension {
            enrolled: p.enrolled.unwrap_or_default(),
            premium_paid_by_government: p.premium_paid_by_government.unwrap_or_default(),
            receiving: p.receiving.unwrap_or_default(),
            monthly_pension: money_out(p.monthly_pension),
        }),
        Payload::Student(s) => P::Student(pb::Student {
            stage: stage_out(s.stage),
            school_code: s.school_code.clone().unwrap_or_default(),
        }),
        Payload::EducationAid(e) => P::EducationAid(pb::EducationAid {
            aid_type: aid_type_out(e.aid_type),
            annual_amount: money_out(e.annual_amount),
        }),
        Payload::MedicalInsurance(m) => P::MedicalInsurance(pb::MedicalInsurance {
            scheme: scheme_out(m.scheme),
            year: m.year.map(u32::from).unwrap_or_default(),
            premium_subsidy: premium_subsidy_out(m.premium_subsidy),
            subsidy_amount: money_out(m.subsidy_amount),
        }),
        Payload::Disability(d) => P::Disability(pb::Disability {
            category: category_out(d.category),
            grade: d.grade.map(u32::from).unwrap_or_default(),
            certificate_no: d.certificate_no.clone().unwrap_or_default(),
        }),
        Payload::DisabilitySubsidy(s) => P::DisabilitySubsidy(pb::DisabilitySubsidy {
            living_subsidy: money_out(s.living_subsidy),
            nursing_subsidy: money_out(s.nursing_subsidy),
        }),
    }
}

/// Domain fact (as the caller may see it) → wire fact.
pub fn visible_fact_out(id: &IdNumber, v: &crate::hub::VisibleFact) -> pb::Fact {
    let f = &v.fact;
    pb::Fact {
        fact_id: f.fact_id.clone(),
        source_version: f.source_version,
        id_number: id.as_str().to_owned(),
        division_code: f.division_code.clone(),
        valid_from: f.valid_from.to_string(),
        valid_to: f.valid_to.map(|d| d.to_string()).unwrap_or_default(),
        payload: Some(payload_out(&f.payload)),
        agency: f.agency.clone(),
        recorded_at: Some(timestamp(f.recorded_at)),
        omitted_fields: v.omitted_fields.clone(),
    }
}

/// Domain fact → wire fact (for clients such as the demo pushing generated facts).
pub fn fact_out(f: &Fact) -> pb::Fact {
    pb::Fact {
        fact_id: f.fact_id.clone(),
        source_version: f.source_version,
        id_number: f.id_number.as_str().to_owned(),
        division_code: f.division_code.as_str().to_owned(),
        valid_from: f.valid_from.to_string(),
        valid_to: f.valid_to.map(|d| d.to_string()).unwrap_or_default(),
        payload: Some(payload_out(&f.payload)),
        agency: String::new(),
        recorded_at: None,
        omitted_fields: Vec::new(),
    }
}

pub fn recipient_out(r: &crate::hub::RecipientView, as_of: NaiveDate) -> pb::Recipient {
    pb::Recipient {
        id_number: r.id_number.as_str().to_owned(),
        facts: r.facts.iter().map(|f| visible_fact_out(&r.id_number, f)).collect(),
        as_of: as_of.to_string(),
        next_page_token: r.next_page_token.clone(),
    }
}

/// Domain payload kind → wire enum.
pub fn payload_kind_out(k: PayloadKind) -> pb::PayloadKind {
    match k {
        PayloadKind::Assistance => pb::PayloadKind::Assistance,
        PayloadKind::Employment => pb::PayloadKind::Employment,
        PayloadKind::Pension => pb::PayloadKind::Pension,
        PayloadKind::Student => pb::PayloadKind::Student,
        PayloadKind::EducationAid => pb::PayloadKind::EducationAid,
        PayloadKind::MedicalInsurance => pb::PayloadKind::MedicalInsurance,
        PayloadKind::Disability => pb::PayloadKind::Disability,
        PayloadKind::DisabilitySubsidy => pb::PayloadKind::DisabilitySubsidy,
    }
}

/// Wire payload kind → domain; `field` names it in the error (UNSPECIFIED or an unknown number is refused).
pub fn payload_kind_in(v: i32, field: &str) -> Result<PayloadKind, FieldError> {
    let k = match pb::PayloadKind::try_from(v) {
        Ok(pb::PayloadKind::Assistance) => PayloadKind::Assistance,
        Ok(pb::PayloadKind::Employment) => PayloadKind::Employment,
        Ok(pb::PayloadKind::Pension) => PayloadKind::Pension,
        Ok(pb::PayloadKind::Student) => PayloadKind::Student,
        Ok(pb::PayloadKind::EducationAid) => PayloadKind::EducationAid,
        Ok(pb::PayloadKind::MedicalInsurance) => PayloadKind::MedicalInsurance,
        Ok(pb::PayloadKind::Disability) => PayloadKind::Disability,
        Ok(pb::PayloadKind::DisabilitySubsidy) => PayloadKind::DisabilitySubsidy,
        Ok(pb::PayloadKind::Unspecified) | Err(_) => {
            return Err(FieldError { field: field.to_owned(), reason: format!("{v} is not a payload kind") });
        }
    };
    Ok(k)
}
