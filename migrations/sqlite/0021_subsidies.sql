-- Subsidy campaigns (issue 18; docs/subsidies.md): price indices pushed by development_reform (市发改委) and the
-- price-subsidy linkage rule versions (社会救助和保障标准与物价上涨挂钩联动机制).

-- Monthly price indices, every version kept: a push of a month whose values differ from its current version adds
-- version n + 1 (never an update); the same values again add nothing (DUPLICATE). Rises are the canonical decimal
-- text of domain::subsidy::Rise (percent, 2 decimals, e.g. '3.00'): compared and computed in the domain, never in SQL.
CREATE TABLE price_indices (
    month          TEXT    NOT NULL,   -- index month 'YYYY-MM'
    version        INTEGER NOT NULL,   -- 1, 2, … per month
    cpi_yoy        TEXT    NOT NULL,
    food_cpi_yoy   TEXT    NOT NULL,
    scpi_yoy       TEXT,               -- NULL: not published
    published_on   TEXT    NOT NULL,   -- 'YYYY-MM-DD' (Asia/Shanghai)
    agency         TEXT    NOT NULL,   -- who pushed it (development_reform)
    recorded_at    INTEGER NOT NULL,   -- microseconds since the Unix epoch (UTC)
    PRIMARY KEY (month, version)
);

-- Linkage rule versions, effective by index month. `params` is the JSON of domain::subsidy::LinkageRule (checked
-- when read: a bad row is an error, never skipped). Added with `doudi subsidies rule add FILE.json --source S`,
-- never overwritten (version and effective_from are unique).
CREATE TABLE linkage_rules (
    version        TEXT    NOT NULL PRIMARY KEY,
    effective_from TEXT    NOT NULL UNIQUE,   -- first index month 'YYYY-MM'
    params         TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    added_at       INTEGER NOT NULL    -- microseconds since the Unix epoch (UTC)
);

-- 发改价格〔2021〕1553号 (docs/domain/policy-reference.md "Price subsidies linked to prices"): CPI >= 3.5 % or food CPI >= 6 %;
-- urban and rural dibao, tekun, unemployment-insurance recipients, entitled persons (优抚对象), orphans, de-facto
-- unsupported children, HIV-infected children. Formula (local, policy-reference.md): the monthly dibao standard
-- x the index's rise, the higher index if both cross; paid once at the highest. Bases: Qingyang's 2022 dibao
-- standards (docs/domain/qingyang-figures.md §3): urban 680.00/month, rural 5,268/year = 439.00/month; groups
-- without a residence (unemployment, entitled persons) take the urban standard. In force from index month 2022-01,
-- the first year whose standards the hub holds. Rounding to the fen half-up (issue 18 item 6; policy-reference.md
-- notes a locality rounding to the yuan: a rule version can say YUAN). No minimum (none found for Gansu).
INSERT INTO linkage_rules VALUES ('621000-1553-2021', '2022-01',
'{"version":"621000-1553-2021","effective_from":"2022-01","cpi_threshold":"3.5","food_cpi_threshold":"6.0","bases":[{"group":"DIBAO","residence":"URBAN","base":"680.00"},{"group":"DIBAO","residence":"RURAL","base":"439.00"},{"group":"TEKUN","residence":"URBAN","base":"680.00"},{"group":"TEKUN","residence":"RURAL","base":"439.00"},{"group":"ORPHAN","residence":"URBAN","base":"680.00"},{"group":"ORPHAN","residence":"RURAL","base":"439.00"},{"group":"UNSUPPORTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"UNSUPPORTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"HIV_AFFECTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"HIV_AFFECTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"UNEMPLOYMENT_INSURANCE","base":"680.00"},{"group":"ENTITLED_VETERAN","base":"680.00"}],"formula":"BASE_TIMES_RISE","minimum":"0.00","rounding":"FEN","pay_once_at_highest":true}',
'发改价格〔2021〕1553号; bases: 2022 dibao standards of the letter (seed-qingyang-d062-reply.txt, docs/domain/qingyang-figures.md §3); formula: docs/domain/policy-reference.md (local)', 0);

-- NDRC and five ministries, 2022-08-31 (关于阶段性调整价格补贴联动机制加大对困难群众物价补贴力度的通知): CPI threshold
-- 3.0 % for the indices of Aug 2022 - Feb 2023 (paid Sep 2022 - Mar 2023), food 6 % unchanged, and two more groups:
-- unemployment-subsidy recipients and dibao-marginal persons (urban and rural bases as dibao).
INSERT INTO linkage_rules VALUES ('621000-2022-0831', '2022-08',
'{"version":"621000-2022-0831","effective_from":"2022-08","effective_until":"2023-02","cpi_threshold":"3.0","food_cpi_threshold":"6.0","bases":[{"group":"DIBAO","residence":"URBAN","base":"680.00"},{"group":"DIBAO","residence":"RURAL","base":"439.00"},{"group":"TEKUN","residence":"URBAN","base":"680.00"},{"group":"TEKUN","residence":"RURAL","base":"439.00"},{"group":"ORPHAN","residence":"URBAN","base":"680.00"},{"group":"ORPHAN","residence":"RURAL","base":"439.00"},{"group":"UNSUPPORTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"UNSUPPORTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"HIV_AFFECTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"HIV_AFFECTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"UNEMPLOYMENT_INSURANCE","base":"680.00"},{"group":"ENTITLED_VETERAN","base":"680.00"},{"group":"UNEMPLOYMENT_SUBSIDY","base":"680.00"},{"group":"DIBAO_MARGINAL","residence":"URBAN","base":"680.00"},{"group":"DIBAO_MARGINAL","residence":"RURAL","base":"439.00"}],"formula":"BASE_TIMES_RISE","minimum":"0.00","rounding":"FEN","pay_once_at_highest":true}',
'NDRC and five ministries, notice of 2022-08-31 (docs/domain/policy-reference.md "Price subsidies linked to prices"); bases as 621000-1553-2021', 0);
