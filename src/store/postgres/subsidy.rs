//! PostgreSQL: price indices and linkage rule versions (migration 0021; issue 18, docs/subsidies.md), written once
//! for both backends in `store/sql/subsidy.rs`.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row};

use super::audit::append_audit;
use super::{PgStore, value};
use crate::domain::calendar::Month;
use crate::domain::subsidy::{FixedCampaign, LinkageRule, PriceIndex, Rise};
use crate::domain::versioning::Decision;
use crate::store::corrupt;
use crate::store::{AuditRecord, StoreError, StoredFixedCampaign, StoredLinkageRule, StoredPriceIndex};

/// The driver the shared SQL runs on.
type Db = Postgres;

subsidy_store!(PgStore);
