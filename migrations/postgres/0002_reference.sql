-- Reference data (product.md §7), versioned by effective date (PostgreSQL form of migrations/sqlite/0002).

-- GB/T 2260 divisions known to the hub (policy-reference.md, "Administrative divisions").
CREATE TABLE divisions (
    code        TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL,          -- 'province' | 'city' | 'county'
    parent_code TEXT
);

INSERT INTO divisions (code, name, level, parent_code) VALUES
    ('620000', '甘肃省', 'province', NULL),
    ('621000', '庆阳市', 'city', '620000'),
    ('621002', '西峰区', 'county', '621000'),
    ('621021', '庆城县', 'county', '621000'),
    ('621022', '环县', 'county', '621000'),
    ('621023', '华池县', 'county', '621000'),
    ('621024', '合水县', 'county', '621000'),
    ('621025', '正宁县', 'county', '621000'),
    ('621026', '宁县', 'county', '621000'),
    ('621027', '镇原县', 'county', '621000');

-- Assistance standards (qingyang-figures.md §3, from 庆市民〔2023〕61号 as quoted in the
-- Qingyang civil affairs bureau's reply to proposal D062 of 2023-08-02).
CREATE TABLE standards (
    year           BIGINT  NOT NULL,
    division_code  TEXT    NOT NULL,
    item           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    amount         NUMERIC(18,2) NOT NULL, -- yuan
    unit           TEXT    NOT NULL,     -- 'PER_PERSON_MONTH' | 'PER_PERSON_YEAR'
    effective_from DATE    NOT NULL,
    source         TEXT    NOT NULL,
    PRIMARY KEY (year, division_code, item)
);

INSERT INTO standards (year, division_code, item, name, amount, unit, effective_from, source) VALUES
    (2022, '621000', 'URBAN_DIBAO_STANDARD', '城市低保标准', '680.00', 'PER_PERSON_MONTH', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'URBAN_DIBAO_AVERAGE_SUBSIDY', '城市低保月人均补助水平', '584.00', 'PER_PERSON_MONTH', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'RURAL_DIBAO_STANDARD', '农村低保标准', '5268.00', 'PER_PERSON_YEAR', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'RURAL_DIBAO_CLASS_1', '农村低保一类对象补助', '5268.00', 'PER_PERSON_YEAR', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'RURAL_DIBAO_CLASS_2', '农村低保二类对象补助', '5004.00', 'PER_PERSON_YEAR', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'RURAL_DIBAO_CLASS_3', '农村低保三类对象补助', '1008.00', 'PER_PERSON_YEAR', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'RURAL_DIBAO_CLASS_4', '农村低保四类对象补助', '696.00', 'PER_PERSON_YEAR', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'TEKUN_URBAN', '城市特困供养人员基本生活标准', '884.00', 'PER_PERSON_MONTH', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2022, '621000', 'TEKUN_RURAL_DISPERSED', '农村特困分散供养基本生活标准', '571.00', 'PER_PERSON_MONTH', '2022-01-01', '庆阳市民政局 D062 答复函 (2023-08-02)'),
    (2023, '621000', 'URBAN_DIBAO_STANDARD', '城市低保标准', '700.00', 'PER_PERSON_MONTH', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'URBAN_DIBAO_AVERAGE_SUBSIDY', '城市低保月人均补助水平', '607.00', 'PER_PERSON_MONTH', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'RURAL_DIBAO_STANDARD', '农村低保标准', '5580.00', 'PER_PERSON_YEAR', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'RURAL_DIBAO_CLASS_1', '农村低保一类对象补助', '5580.00', 'PER_PERSON_YEAR', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'RURAL_DIBAO_CLASS_2', '农村低保二类对象补助', '5304.00', 'PER_PERSON_YEAR', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'RURAL_DIBAO_CLASS_3', '农村低保三类对象补助', '1068.00', 'PER_PERSON_YEAR', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'RURAL_DIBAO_CLASS_4', '农村低保四类对象补助', '744.00', 'PER_PERSON_YEAR', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'TEKUN_URBAN', '城市特困供养人员基本生活标准', '910.00', 'PER_PERSON_MONTH', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'TEKUN_RURAL_CENTRALIZED', '农村特困集中供养基本生活标准', '700.00', 'PER_PERSON_MONTH', '2023-01-01', '庆市民〔2023〕61号'),
    (2023, '621000', 'TEKUN_RURAL_DISPERSED', '农村特困分散供养基本生活标准', '605.00', 'PER_PERSON_MONTH', '2023-01-01', '庆市民〔2023〕61号');
