-- Fixed-amount subsidy campaigns (issue 18 item 4; docs/subsidies.md): the one-time living subsidy (一次性生活补贴),
-- winter warmth support (温暖过冬) and the like. `params` is the JSON of domain::subsidy::FixedCampaign (groups and the
-- amount per group; checked when read: a bad row is an error, never skipped). Added with
-- `doudi subsidies campaign add FILE.json --source S`, never overwritten. None is loaded here: the letter gives the
-- totals of 2022 (庆市民 reply to D062: 211,300 persons, 49,460,800 yuan in July 2022 under 甘民发〔2022〕101号) but not
-- the amount per group, which a campaign needs.
CREATE TABLE fixed_campaigns (
    code           TEXT    NOT NULL PRIMARY KEY,
    month          TEXT    NOT NULL,   -- month paid 'YYYY-MM'
    fund_program   TEXT    NOT NULL,   -- ONE_TIME_SUBSIDY, WINTER_WARMTH or OTHER
    params         TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    added_at       TIMESTAMPTZ NOT NULL
);
