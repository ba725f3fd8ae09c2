//! Operator commands that work on the hub's database directly (first start, disaster recovery, and the actions that
//! have no administrative RPC yet). Each opens the store from the configuration, does one thing, and closes it.

pub mod calendar;
pub mod retention;
