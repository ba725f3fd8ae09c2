//! Plausibility maxima of single amounts, checked where an amount is accepted (issue 23 item 3; docs/money-limits.md
//! gives the reasoning per field).
//!
//! The wire grammar alone admits 999,999,999,999.99 yuan for every amount; 100,000 monthly benefits of that size in
//! one county overflowed the sums of every county's reports. Sums no longer overflow (`Money` holds i128 fen and the
//! stores sum exactly), but a monthly benefit of a billion yuan is a unit or digit error, not a benefit: it is refused
//! with INVALID_ARGUMENT naming the field and the limit. Each maximum lies one to two orders of magnitude above the
//! largest real figure the domain documents give, so no genuine amount is refused, and far enough below the wire
//! maximum that a shifted decimal point or a value in fen instead of yuan is caught.

use super::money::Money;

/// One field's maximum and the period it is per (for the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Field path as the error names it, e.g. `assistance.monthly_benefit`.
    pub field: &'static str,
    /// Largest accepted amount (inclusive).
    pub max: Money,
    /// What the amount is per, e.g. "a month".
    pub per: &'static str,
}

const fn yuan(whole: i128) -> Money {
    match Money::from_fen(whole * 100) {
        Ok(m) => m,
        Err(_) => panic!("limits are not negative"),
    }
}

/// Every limit (docs/money-limits.md is the same table with the reasoning).
pub const LIMITS: [Limit; 14] = [
    // Qingyang 2023: highest standard 910 a month (urban tekun), urban dibao average 607
    // (docs/domain/qingyang-figures.md §3).
    Limit { field: "assistance.monthly_benefit", max: yuan(10_000), per: "a month" },
    // Resident pensions are a few hundred yuan a month, employee pensions a few thousand.
    Limit { field: "pension.monthly_pension", max: yuan(50_000), per: "a month" },
    // Education living allowances are about 1,000 to 3,000 yuan a school year; grants and waivers tens of thousands.
    Limit { field: "education_aid.annual_amount", max: yuan(100_000), per: "a school year" },
    // Gansu 2022 premium subsidies: at most 320 yuan a person a year (docs/domain/policy-reference.md).
    Limit { field: "medical_insurance.subsidy_amount", max: yuan(10_000), per: "a year" },
    // The two disability subsidies are about 100 yuan a month each.
    Limit { field: "disability_subsidy.living_subsidy", max: yuan(10_000), per: "a month" },
    Limit { field: "disability_subsidy.nursing_subsidy", max: yuan(10_000), per: "a month" },
    // One county's disbursement of one program in a month: the whole city's dibao and tekun roster (211,300
    // persons) at the highest standard (910) is about 192 million yuan a month.
    Limit { field: "amount", max: yuan(1_000_000_000), per: "a county, program and month" },
    // One medical settlement (a visit or stay): the costliest treatments cost a few million yuan.
    Limit { field: "total_cost", max: yuan(10_000_000), per: "a settlement" },
    Limit { field: "policy_scope_cost", max: yuan(10_000_000), per: "a settlement" },
    Limit { field: "basic_paid", max: yuan(10_000_000), per: "a settlement" },
    Limit { field: "critical_illness_paid", max: yuan(10_000_000), per: "a settlement" },
    Limit { field: "medical_assistance_paid", max: yuan(10_000_000), per: "a settlement" },
    Limit { field: "other_paid", max: yuan(10_000_000), per: "a settlement" },
    Limit { field: "out_of_pocket", max: yuan(10_000_000), per: "a settlement" },
];

/// The limit of a field path (the last segment decides for indexed paths such as `settlements[3].total_cost`).
pub fn limit(field: &str) -> Option<&'static Limit> {
    LIMITS.iter().find(|l| field == l.field || field.strip_suffix(l.field).is_some_and(|head| head.ends_with('.')))
}

/// Whether `value` of `field` is plausible.
///
/// # Errors
/// The reason (for INVALID_ARGUMENT naming the field): the value, the maximum and what it is per.
pub fn check(field: &str, value: Money) -> Result<(), String> {
    match limit(field) {
        Some(l) if value > l.max => Err(format!(
            "{value} yuan is above the plausible maximum of {} yuan {} (docs/money-limits.md); check the unit (yuan, \
             not fen) and the digits",
            l.max, l.per
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    /// Issue 23: "a monthly benefit of a billion yuan is refused with the field and the limit named".
    #[test]
    fn a_billion_yuan_monthly_benefit_is_refused_naming_the_limit() {
        let e = check("assistance.monthly_benefit", money("1000000000.00")).unwrap_err();
        assert!(e.contains("1000000000.00") && e.contains("10000.00 yuan a month"), "{e}");
        assert!(check("assistance.monthly_benefit", money("999999999999.99")).is_err());
        // The limit itself is accepted; 2023's highest standard (910, docs/domain/qingyang-figures.md) far below it.
        assert_eq!(check("assistance.monthly_benefit", money("10000.00")), Ok(()));
        assert_eq!(check("assistance.monthly_benefit", money("910.00")), Ok(()));
        assert!(check("assistance.monthly_benefit", money("10000.01")).is_err());
    }

    #[test]
    fn every_limit_is_below_the_wire_maximum_and_indexed_paths_find_theirs() {
        for l in LIMITS {
            assert!(l.max < Money::MAX_WIRE, "{}", l.field);
        }
        assert_eq!(limit("settlements[3].total_cost").unwrap().field, "total_cost");
        assert_eq!(limit("amount").unwrap().max, money("1000000000"));
        assert_eq!(limit("household_id"), None);
        assert_eq!(limit("facts[2].education_aid.annual_amount").unwrap().max, money("100000"), "not `amount`'s");
    }
}
