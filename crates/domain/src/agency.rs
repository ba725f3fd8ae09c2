//! Agencies and authenticated callers.
//!
//! An agency code is `^[a-z][a-z_]{1,39}$` (lower-case ASCII letters and `_`). The six agencies of the hub
//! (docs/domain/qingyang-figures.md §1) and development_reform (issue 18) have constants and constructors here; whether an agency may do something is
//! decided by the access policy (docs/spec/security.md), not by this module.
//!
//! A caller is identified by the SPIFFE ID in its client certificate's URI SAN (docs/spec/security.md):
//! `spiffe://<trust-domain>/agency/<agency_code>`, or for a county office
//! `spiffe://<trust-domain>/agency/<agency_code>/division/<6-digit county code>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::division::{DivisionCode, DivisionError, DivisionLevel};

/// Why a string is not an agency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AgencyError {
    /// Does not match `^[a-z][a-z_]{1,39}$`.
    #[error("must be 2-40 lower-case ASCII letters or '_', starting with a letter")]
    Format,
}

/// A syntactically valid agency code, e.g. `civil_affairs`. Not necessarily one of the six known agencies: see
/// [`AgencyCode::is_known`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgencyCode(String);

impl AgencyCode {
    /// 市民政局, the civil affairs bureau: leads the safety-net group, owns `assistance` facts.
    pub const CIVIL_AFFAIRS: &'static str = "civil_affairs";
    /// 市人社局, human resources and social security: owns `employment` and `pension` facts.
    pub const HUMAN_RESOURCES: &'static str = "human_resources";
    /// 市教育局, education: owns `student` and `education_aid` facts.
    pub const EDUCATION: &'static str = "education";
    /// 市医保局, medical insurance: owns `medical_insurance` facts and settlements.
    pub const MEDICAL_INSURANCE: &'static str = "medical_insurance";
    /// 市残联, disabled persons' federation: owns `disability` and `disability_subsidy` facts.
    pub const DISABILITY_FEDERATION: &'static str = "disability_federation";
    /// 领导小组, the leading group: reads aggregates only.
    pub const LEADING_GROUP: &'static str = "leading_group";
    /// 市发改委, the development and reform commission: pushes monthly price indices, reads aggregates, nothing
    /// person-level (issue 18; docs/subsidies.md).
    pub const DEVELOPMENT_REFORM: &'static str = "development_reform";

    /// The seven agencies of the hub, in the order of docs/spec/security.md's access table.
    pub const KNOWN: [&'static str; 7] = [
        Self::CIVIL_AFFAIRS,
        Self::HUMAN_RESOURCES,
        Self::EDUCATION,
        Self::MEDICAL_INSURANCE,
        Self::DISABILITY_FEDERATION,
        Self::LEADING_GROUP,
        Self::DEVELOPMENT_REFORM,
    ];

    /// Parses an agency code: 2–40 characters, `[a-z]` then `[a-z_]`.
    ///
    /// # Errors
    /// [`AgencyError::Format`] for anything else (upper case, digits, `-`, spaces, empty, too long).
    pub fn parse(s: &str) -> Result<AgencyCode, AgencyError> {
        let b = s.as_bytes();
        let valid = (2..=40).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b[1..].iter().all(|&c| c.is_ascii_lowercase() || c == b'_');
        if valid { Ok(AgencyCode(s.to_owned())) } else { Err(AgencyError::Format) }
    }

    /// A code from a constant known to be valid.
    fn known(code: &'static str) -> AgencyCode {
        debug_assert!(AgencyCode::parse(code).is_ok());
        AgencyCode(code.to_owned())
    }

    /// `civil_affairs`.
    pub fn civil_affairs() -> AgencyCode {
        AgencyCode::known(Self::CIVIL_AFFAIRS)
    }

    /// `human_resources`.
    pub fn human_resources() -> AgencyCode {
        AgencyCode::known(Self::HUMAN_RESOURCES)
    }

    /// `education`.
    pub fn education() -> AgencyCode {
        AgencyCode::known(Self::EDUCATION)
    }

    /// `medical_insurance`.
    pub fn medical_insurance() -> AgencyCode {
        AgencyCode::known(Self::MEDICAL_INSURANCE)
    }

    /// `disability_federation`.
    pub fn disability_federation() -> AgencyCode {
        AgencyCode::known(Self::DISABILITY_FEDERATION)
    }

    /// `leading_group`.
    pub fn leading_group() -> AgencyCode {
        AgencyCode::known(Self::LEADING_GROUP)
    }

    /// `development_reform`.
    pub fn development_reform() -> AgencyCode {
        AgencyCode::known(Self::DEVELOPMENT_REFORM)
    }

    /// The code, e.g. `"civil_affairs"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the seven agencies in [`AgencyCode::KNOWN`].
    pub fn is_known(&self) -> bool {
        AgencyCode::KNOWN.contains(&self.0.as_str())
    }
}

impl fmt::Display for AgencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgencyCode {
    type Err = AgencyError;

    /// Same as [`AgencyCode::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgencyCode::parse(s)
    }
}

impl Serialize for AgencyCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Deserializes from the string form, validating it as [`AgencyCode::parse`] does.
impl<'de> Deserialize<'de> for AgencyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        AgencyCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a SPIFFE ID does not name a caller of this hub. Messages do not echo the presented ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// Does not start with `spiffe://`.
    #[error("is not a spiffe:// URI")]
    NotSpiffe,
    /// The trust domain is not the configured one (or the configured one is empty).
    #[error("trust domain does not match")]
    TrustDomain,
    /// The path is not `/agency/<agency_code>` or `/agency/<agency_code>/division/<county code>`.
    #[error("path must be /agency/<agency_code> or /agency/<agency_code>/division/<county code>")]
    Path,
    /// The agency segment is not a valid agency code.
    #[error("agency code {0}")]
    Agency(#[from] AgencyError),
    /// The division segment is not a known division code.
    #[error("division {0}")]
    Division(#[from] DivisionError),
    /// The division is known but is not a county (e.g. the city 621000, or a township).
    #[error("division must be a county code, not a {0}")]
    NotCounty(DivisionLevel),
}

/// An authenticated caller: its agency, for a county office its county, and the SPIFFE ID it presented; for a call
/// that came through a pinned gateway (`grpc::gateway`), the gateway it came through.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    agency: AgencyCode,
    county: Option<DivisionCode>,
    spiffe_id: String,
    via: Option<String>,
}

impl Principal {
    /// The principal for `agency` (and, for a county office, `county`) in `trust_domain`, with its canonical SPIFFE
    /// ID; e.g. for issuing certificates or for tests.
    ///
    /// # Errors
    /// [`PrincipalError::TrustDomain`] for an empty trust domain or one containing `/`; [`PrincipalError::NotCounty`]
    /// if `county` is not a county-level code.
    pub fn new(
        trust_domain: &str,
        agency: AgencyCode,
        county: Option<DivisionCode>,
    ) -> Result<Principal, PrincipalError> {
        if !valid_trust_domain(trust_domain) {
            return Err(PrincipalError::TrustDomain);
        }
        let mut spiffe_id = format!("spiffe://{trust_domain}/agency/{agency}");
        if let Some(county) = &county {
            if county.level() != DivisionLevel::County {
                return Err(PrincipalError::NotCounty(county.level()));
            }
            spiffe_id.push_str("/division/");
            spiffe_id.push_str(county.as_str());
        }
        Ok(Principal { agency, county, spiffe_id, via: None })
    }

    /// Reads a SPIFFE ID (docs/spec/security.md): exactly `spiffe://<trust_domain>/agency/<agency_code>` or
    /// `spiffe://<trust_domain>/agency/<agency_code>/division/<county>`, where the county is known to the built-in
    /// reference set ([`DivisionCode::parse`]). Nothing else is accepted: no extra or empty segments, query,
    /// fragment, port, user info or percent-encoding. Whether the agency is allowed anything is for the policy.
    ///
    /// # Errors
    /// See [`PrincipalError`].
    pub fn from_spiffe(uri: &str, trust_domain: &str) -> Result<Principal, PrincipalError> {
        Principal::from_spiffe_with(uri, trust_domain, DivisionCode::parse)
    }

    /// As [`Principal::from_spiffe`], with the division parsed by `parse_division` (e.g. against reference data
    /// through [`DivisionCode::parse_with`]); it must still yield a county-level code.
    ///
    /// # Errors
    /// See [`PrincipalError`].
    pub fn from_spiffe_with(
        uri: &str,
        trust_domain: &str,
        parse_division: impl Fn(&str) -> Result<DivisionCode, DivisionError>,
    ) -> Result<Principal, PrincipalError> {
        let rest = uri.strip_prefix("spiffe://").ok_or(PrincipalError::NotSpiffe)?;
        let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_trust_domain(trust_domain) || domain != trust_domain {
            return Err(PrincipalError::TrustDomain);
        }
        let segments: Vec<&str> = path.split('/').collect();
        let (agency, county) = match segments.as_slice() {
            ["agency", agency] => (agency, None),
            ["agency", agency, "division", county] => (agency, Some(county)),
            _ => return Err(PrincipalError::Path),
        };
        let agency = AgencyCode::parse(agency)?;
        let county = county.map(|c| parse_division(c)).transpose()?;
        if let Some(county) = &county
            && county.level() != DivisionLevel::County
        {
            return Err(PrincipalError::NotCounty(county.level()));
        }
        Ok(Principal { agency, county, spiffe_id: uri.to_owned(), via: None })
    }

    /// The caller's agency.
    pub fn agency(&self) -> &AgencyCode {
        &self.agency
    }

    /// The county of a county office; `None` for a city-wide (whole hub) agency.
    pub fn county(&self) -> Option<&DivisionCode> {
        self.county.as_ref()
    }

    /// The SPIFFE ID as presented.
    pub fn spiffe_id(&self) -> &str {
        &self.spiffe_id
    }

    /// The pinned gateway the call came through, as the audit names it (its SPIFFE ID, or `sha256:<hex>` of its
    /// certificate); `None` for a peer connected directly.
    pub fn via(&self) -> Option<&str> {
        self.via.as_deref()
    }

    /// This principal, having come through the gateway `via`.
    pub fn with_via(mut self, via: impl Into<String>) -> Principal {
        self.via = Some(via.into());
        self
    }

    /// Whether `division` lies in the caller's scope: everything for a city-wide agency, the county and its
    /// townships and villages for a county office (docs/spec/security.md).
    pub fn in_scope(&self, division: &DivisionCode) -> bool {
        self.county.as_ref().is_none_or(|county| county.contains(division))
    }
}

/// A trust domain is a non-empty host-like name: lower-case ASCII letters, digits, `.`, `-` and `_` (SPIFFE ID
/// specification).
fn valid_trust_domain(td: &str) -> bool {
    !td.is_empty()
        && td.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "doudi.qingyang.example";

    fn division(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn agency_codes() {
        for code in AgencyCode::KNOWN {
            let parsed = AgencyCode::parse(code).unwrap();
            assert!(parsed.is_known());
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.to_string(), code);
        }
        assert_eq!(AgencyCode::civil_affairs().as_str(), "civil_affairs");
        assert_eq!(AgencyCode::human_resources().as_str(), AgencyCode::HUMAN_RESOURCES);
        assert_eq!(AgencyCode::education().as_str(), AgencyCode::EDUCATION);
        assert_eq!(AgencyCode::medical_insurance().as_str(), AgencyCode::MEDICAL_INSURANCE);
        assert_eq!(AgencyCode::disability_federation().as_str(), AgencyCode::DISABILITY_FEDERATION);
        assert_eq!(AgencyCode::leading_group().as_str(), AgencyCode::LEADING_GROUP);
        assert_eq!(AgencyCode::development_reform().as_str(), AgencyCode::DEVELOPMENT_REFORM);
        let other = AgencyCode::parse("veterans_affairs").unwrap();
        assert!(!other.is_known());
        assert!(AgencyCode::parse("ab").is_ok());
        assert!(AgencyCode::parse(&"a".repeat(40)).is_ok());
    }

    #[test]
    fn bad_agency_codes() {
        let too_long = "a".repeat(41);
        for s in [
            "",
            "a",
            "Civil_affairs",
            "CIVIL_AFFAIRS",
            "_civil",
            "civil-affairs",
            "civil affairs",
            "civil2",
            "民政",
            too_long.as_str(),
        ] {
            assert_eq!(AgencyCode::parse(s), Err(AgencyError::Format), "{s:?}");
        }
    }

    #[test]
    fn agency_serde() {
        assert_eq!(serde_json::to_string(&AgencyCode::education()).unwrap(), "\"education\"");
        assert_eq!(serde_json::from_str::<AgencyCode>("\"education\"").unwrap(), AgencyCode::education());
        assert!(serde_json::from_str::<AgencyCode>("\"Education\"").is_err());
    }

    #[test]
    fn city_wide_agency() {
        let uri = format!("spiffe://{TD}/agency/civil_affairs");
        let p = Principal::from_spiffe(&uri, TD).unwrap();
        assert_eq!(p.agency(), &AgencyCode::civil_affairs());
        assert_eq!(p.county(), None);
        assert_eq!(p.spiffe_id(), uri);
        assert!(p.in_scope(&division("621022101201")));
        assert!(p.in_scope(&division("621000")));
        assert_eq!(Principal::new(TD, AgencyCode::civil_affairs(), None), Ok(p));
    }

    #[test]
    fn county_office() {
        let uri = format!("spiffe://{TD}/agency/civil_affairs/division/621022");
        let p = Principal::from_spiffe(&uri, TD).unwrap();
        assert_eq!(p.county(), Some(&division("621022")));
        assert!(p.in_scope(&division("621022")));
        assert!(p.in_scope(&division("621022101")));
        assert!(p.in_scope(&division("621022101201")));
        assert!(!p.in_scope(&division("621027")));
        assert!(!p.in_scope(&division("621027101")));
        assert!(!p.in_scope(&division("621000")));
        assert!(!p.in_scope(&division("620000")));
        assert_eq!(Principal::new(TD, AgencyCode::civil_affairs(), Some(division("621022"))), Ok(p));
    }

    #[test]
    fn wrong_trust_domain() {
        for uri in [
            "spiffe://other.example/agency/civil_affairs",
            "spiffe://DOUDI.QINGYANG.EXAMPLE/agency/civil_affairs",
            "spiffe://doudi.qingyang.example:443/agency/civil_affairs",
            "spiffe://user@doudi.qingyang.example/agency/civil_affairs",
            "spiffe://doudi.qingyang.example.evil/agency/civil_affairs",
            "spiffe:///agency/civil_affairs",
        ] {
            assert_eq!(Principal::from_spiffe(uri, TD), Err(PrincipalError::TrustDomain), "{uri}");
        }
        assert_eq!(Principal::from_spiffe("spiffe:///agency/civil_affairs", ""), Err(PrincipalError::TrustDomain));
        assert_eq!(Principal::new("", AgencyCode::education(), None), Err(PrincipalError::TrustDomain));
        assert_eq!(Principal::new("a/b", AgencyCode::education(), None), Err(PrincipalError::TrustDomain));
    }

    #[test]
    fn not_spiffe() {
        for uri in [
            "",
            "https://doudi.qingyang.example/agency/civil_affairs",
            "SPIFFE://doudi.qingyang.example/agency/civil_affairs",
            " spiffe://doudi.qingyang.example/agency/civil_affairs",
        ] {
            assert_eq!(Principal::from_spiffe(uri, TD), Err(PrincipalError::NotSpiffe), "{uri:?}");
        }
    }

    #[test]
    fn wrong_paths() {
        for path in [
            "",
            "/",
            "/agency",
            "/agency/",
            "/agency/civil_affairs/",
            "/agency//civil_affairs",
            "//agency/civil_affairs",
            "/agency/civil_affairs/extra",
            "/agency/civil_affairs/division",
            "/agency/civil_affairs/division/",
            "/agency/civil_affairs/division/621022/",
            "/agency/civil_affairs/division/621022/extra",
            "/agency/civil_affairs/county/621022",
            "/Agency/civil_affairs",
            "/agencies/civil_affairs",
        ] {
            let uri = format!("spiffe://{TD}{path}");
            assert!(Principal::from_spiffe(&uri, TD).is_err(), "{uri}");
        }
        assert_eq!(
            Principal::from_spiffe(&format!("spiffe://{TD}/agency/civil_affairs/extra"), TD),
            Err(PrincipalError::Path)
        );
    }

    #[test]
    fn bad_agency_in_uri() {
        for agency in ["Civil_Affairs", "CIVIL_AFFAIRS", "civil%5Faffairs", "civil_affairs?x=1", "civil_affairs#f"] {
            let uri = format!("spiffe://{TD}/agency/{agency}");
            assert_eq!(Principal::from_spiffe(&uri, TD), Err(PrincipalError::Agency(AgencyError::Format)), "{uri}");
        }
    }

    #[test]
    fn division_must_be_a_known_county() {
        let with = |d: &str| Principal::from_spiffe(&format!("spiffe://{TD}/agency/civil_affairs/division/{d}"), TD);
        assert_eq!(with("621000"), Err(PrincipalError::NotCounty(DivisionLevel::City)));
        assert_eq!(with("620000"), Err(PrincipalError::NotCounty(DivisionLevel::Province)));
        assert_eq!(with("621022101"), Err(PrincipalError::NotCounty(DivisionLevel::Township)));
        assert!(matches!(with("621001"), Err(PrincipalError::Division(DivisionError::Unknown(_)))));
        assert!(matches!(with("62102x"), Err(PrincipalError::Division(DivisionError::Format))));
        assert_eq!(with("621000").unwrap_err().to_string(), "division must be a county code, not a city");
        assert_eq!(
            Principal::new(TD, AgencyCode::civil_affairs(), Some(division("621000"))),
            Err(PrincipalError::NotCounty(DivisionLevel::City))
        );
    }

    #[test]
    fn reference_data_can_replace_the_built_in_divisions() {
        let beijing = |c: &str| DivisionCode::parse_with(c, |c| c == "110105");
        let uri = format!("spiffe://{TD}/agency/civil_affairs/division/110105");
        assert!(Principal::from_spiffe(&uri, TD).is_err());
        let p = Principal::from_spiffe_with(&uri, TD, beijing).unwrap();
        assert_eq!(p.county().map(DivisionCode::as_str), Some("110105"));
    }
}
