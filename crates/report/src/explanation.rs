//! A finding's explanation (`domain::explain::Explanation`, as `ExplainFinding` returns it) as text: what `doudi
//! findings explain ID` prints and the demo shows. The findings page (`findings_page.rs`) renders the same lines as
//! HTML tables.

use doudi_domain::explain::{Explanation, Line};

/// The blocks of an explanation in print order, each with its bilingual title: inputs, parameters, steps, test.
pub(crate) fn blocks(e: &Explanation) -> [(&'static str, &[Line]); 4] {
    [
        ("输入 Inputs (value: content hash 内容哈希)", &e.inputs),
        ("参数 Parameters", &e.parameters),
        ("计算步骤 Steps", &e.steps),
        ("判定 Test", std::slice::from_ref(&e.test)),
    ]
}

/// An optional amount as printed: the amount, or `—` when there is none.
pub(crate) fn or_dash(s: &Option<String>) -> &str {
    s.as_deref().filter(|s| !s.is_empty()).unwrap_or("—")
}

/// The explanation as text: a heading line (finding id, code, agency to act), then each block with each line as
/// `name = value`, its Chinese and its English on the next two lines, then the recomputed and stored amounts and
/// whether they agree. Chinese first, English second, throughout.
pub fn text(e: &Explanation) -> String {
    let mut out = format!("问题 Finding {}  {}  责任部门 agency to act: {}\n", e.finding_id, e.code, e.agency_to_act);
    for (title, lines) in blocks(e) {
        out.push_str(&format!("\n{title}\n"));
        for l in lines {
            out.push_str(&format!("  {} = {}\n    {}\n    {}\n", l.name, l.value, l.zh, l.en));
        }
    }
    out.push_str(&format!(
        "\n重算 Recomputed: expected 应付 {} / actual 实付 {}; 存储 stored: {} / {}\n",
        or_dash(&e.recomputed_expected),
        or_dash(&e.recomputed_actual),
        or_dash(&e.stored_expected),
        or_dash(&e.stored_actual)
    ));
    out.push_str(&format!(
        "与存储一致 Agrees with the stored finding: {}\n",
        if e.matches_stored { "是 yes" } else { "否 no" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, en: &str, zh: &str, value: &str) -> Line {
        Line { name: name.into(), en: en.into(), zh: zh.into(), value: value.into() }
    }

    #[test]
    fn text_has_every_line_in_both_languages_and_dashes_for_missing_amounts() {
        let e = Explanation {
            finding_id: "coverage/2023Q2/UNINSURED/ab".into(),
            code: "UNINSURED".into(),
            agency_to_act: "medical_insurance".into(),
            inputs: vec![line(
                "fact_version",
                "fact version civil_affairs/AS-1/1",
                "事实版本 civil_affairs/AS-1/1",
                "00",
            )],
            parameters: vec![line("as_of", "the snapshot's as_of", "快照截止日", "2023-06-30")],
            steps: vec![line("insurance", "medical_insurance facts for 2023", "2023 年医保参保事实", "none")],
            test: line("test", "enrolled and not insured", "在册且未参保", "raised"),
            recomputed_expected: None,
            recomputed_actual: None,
            stored_expected: Some(String::new()),
            stored_actual: None,
            raised: true,
            matches_stored: true,
        };
        let t = text(&e);
        assert!(t.starts_with(
            "问题 Finding coverage/2023Q2/UNINSURED/ab  UNINSURED  责任部门 agency to act: medical_insurance\n"
        ));
        assert!(t.contains("\n  as_of = 2023-06-30\n    快照截止日\n    the snapshot's as_of\n"), "{t}");
        assert!(t.contains("\n判定 Test\n  test = raised\n    在册且未参保\n    enrolled and not insured\n"), "{t}");
        assert!(t.contains("重算 Recomputed: expected 应付 — / actual 实付 —; 存储 stored: — / —\n"), "{t}");
        assert!(t.ends_with("与存储一致 Agrees with the stored finding: 是 yes\n"), "{t}");
    }
}
