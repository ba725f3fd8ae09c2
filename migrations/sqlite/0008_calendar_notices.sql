-- Holiday notices loaded by operators, versioned, and the deadline changes they caused (issue 15).
--
-- `doudi calendar add FILE --source …` loads one year's State Council notice: it adds a version of that year to
-- `calendar_notices` / `calendar_notice_days` (history, never rewritten), replaces the year's rows of
-- `work_calendar` (the calendar in force, read by every deadline computation), records in
-- `warning_deadline_changes` every warning whose deadlines moved (old and new), and appends an audit event,
-- all in one transaction. The years held before this migration (2022-2026, migration 0003) become version 1.

CREATE TABLE calendar_notices (
    year      INTEGER NOT NULL,                 -- the notice's year
    version   INTEGER NOT NULL CHECK (version >= 1),
    source    TEXT    NOT NULL,                 -- the notice as cited by the operator, e.g. 国办发明电〔2026〕N号
    reason    TEXT    NOT NULL,                 -- '' for a year's first version; why it was corrected otherwise
    loaded_at INTEGER NOT NULL,                 -- microseconds since the Unix epoch (UTC)
    loaded_by TEXT    NOT NULL,                 -- who loaded it (operator account), or the migration
    PRIMARY KEY (year, version)
);

CREATE TABLE calendar_notice_days (
    year    INTEGER NOT NULL,
    version INTEGER NOT NULL,
    date    TEXT    NOT NULL,                   -- YYYY-MM-DD (may be in December of year - 1: the New Year block)
    kind    TEXT    NOT NULL CHECK (kind IN ('HOLIDAY','MAKEUP_WORKDAY')),
    name    TEXT    NOT NULL,
    PRIMARY KEY (year, version, date),
    FOREIGN KEY (year, version) REFERENCES calendar_notices (year, version)
);

INSERT INTO calendar_notices (year, version, source, reason, loaded_at, loaded_by)
    SELECT year, 1, MIN(source), '', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
           'migration 0003_calendar'
    FROM work_calendar GROUP BY year;

INSERT INTO calendar_notice_days (year, version, date, kind, name)
    SELECT year, 1, date, kind, name FROM work_calendar;

CREATE TABLE warning_deadline_changes (
    agency           TEXT    NOT NULL,
    warning_id       TEXT    NOT NULL,
    calendar_year    INTEGER NOT NULL,          -- the notice whose load moved the deadlines
    calendar_version INTEGER NOT NULL,
    changed_at       INTEGER NOT NULL,          -- microseconds since the Unix epoch (UTC)
    old_visit_due    TEXT    NOT NULL,
    old_decision_due TEXT    NOT NULL,
    old_provisional  INTEGER NOT NULL CHECK (old_provisional IN (0, 1)),
    new_visit_due    TEXT    NOT NULL,
    new_decision_due TEXT    NOT NULL,
    new_provisional  INTEGER NOT NULL CHECK (new_provisional IN (0, 1)),
    PRIMARY KEY (agency, warning_id, calendar_year, calendar_version),
    FOREIGN KEY (agency, warning_id) REFERENCES warnings (agency, warning_id),
    FOREIGN KEY (calendar_year, calendar_version) REFERENCES calendar_notices (year, version)
);
