//! Pure domain types and rules: no I/O, no tonic, no sqlx.

pub mod admin;
pub mod agency;
pub mod answer;
pub mod audit;
pub mod calendar;
pub mod coordination;
pub mod countersign;
pub mod coverage;
pub mod division;
pub mod explain;
pub mod fact;
pub mod holiday_notice;
pub mod id_number;
pub mod medical;
pub mod medical_history;
pub mod money;
pub mod money_limits;
pub mod policy;
pub mod retention;
pub mod snapshot;
pub mod subsidy;
pub mod summary;
pub mod versioning;
pub mod workdays;
