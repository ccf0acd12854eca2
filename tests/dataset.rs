//! Data sources and templates: CSV in several encodings, column selection, malformed rows with
//! line numbers, row cycling, `{{...}}`/`${...}` scanning, and JSON-safe rendering of any value.

use std::path::Path;

use encoding_rs::{GBK, SHIFT_JIS, UTF_8};
use proptest::prelude::*;
use streamprobe::config::Secret;
use streamprobe::config::template::{Piece, Template, TemplateBuilder, scan};
use streamprobe::dataset::{Dataset, DatasetError};

fn csv(name: &str) -> std::path::PathBuf {
    Path::new("tests/data/csv").join(name)
}

#[test]
fn utf8_csv_with_quotes_and_embedded_newlines() {
    let data = Dataset::from_csv_file(&csv("prompts.csv"), UTF_8, None).unwrap();
    assert_eq!(data.columns(), ["content", "id"]);
    assert_eq!(data.len(), 3);
    assert_eq!(
        data.row(1),
        ["Say \"hi\", then a backslash \\\\ and\na newline", "2"]
    );
    assert_eq!(data.row(2), ["你好，世界", "3"]);
}

#[test]
fn column_limits_rows_to_that_column() {
    let data = Dataset::from_csv_file(&csv("prompts.csv"), UTF_8, Some("id")).unwrap();
    assert_eq!(data.columns(), ["id"]);
    assert_eq!(data.row(0), ["1"]);
    assert_eq!(data.column_index("id"), Some(0));
    assert_eq!(data.column_index("content"), None);
}

#[test]
fn rows_cycle_when_there_are_more_requests_than_rows() {
    let data = Dataset::from_csv_str("n\na\nb\n", None).unwrap();
    let seen: Vec<&str> = (0..5).map(|n| data.row(n)[0].as_str()).collect();
    assert_eq!(seen, ["a", "b", "a", "b", "a"]);
}

#[test]
fn gbk_and_shift_jis_files_decode_with_their_label() {
    let gbk = Dataset::from_csv_file(&csv("gbk.csv"), GBK, None).unwrap();
    assert_eq!(gbk.columns(), ["问题", "编号"]);
    assert_eq!(gbk.row(0), ["你好，世界", "1"]);
    assert_eq!(gbk.row(1)[0], "今天天气怎么样？");
    let sjis = Dataset::from_csv_file(&csv("shift_jis.csv"), SHIFT_JIS, None).unwrap();
    assert_eq!(sjis.columns(), ["質問"]);
    assert_eq!(sjis.row(0), ["こんにちは"]);
}

#[test]
fn a_utf16_file_with_a_bom_decodes_whatever_the_label() {
    let data = Dataset::from_csv_file(&csv("utf16.csv"), UTF_8, None).unwrap();
    assert_eq!(data.columns(), ["prompt", "lang"]);
    assert_eq!(data.row(1), ["日本語のテキスト", "ja"]);
}

#[test]
fn encoding_labels_include_the_old_scripts_python_spellings() {
    let label = |l: &str| Dataset::encoding_for_label(l).map(|e| e.name());
    assert_eq!(label("utf-8"), Some("UTF-8"));
    assert_eq!(label("GB18030"), Some("gb18030"));
    assert_eq!(label("big5"), Some("Big5"));
    assert_eq!(label("shift_jis"), Some("Shift_JIS"));
    assert_eq!(label("utf-8-sig"), Some("UTF-8"));
    assert_eq!(label("utf_8"), Some("UTF-8"));
    assert_eq!(label("cp936"), Some("GBK"));
    assert_eq!(label("utf-9"), None);
}

#[test]
fn a_utf8_bom_is_not_part_of_the_first_column_name() {
    let data = Dataset::from_csv_bytes(b"\xEF\xBB\xBFcontent\nhi\n", GBK, None).unwrap();
    assert_eq!(data.columns(), ["content"]);
}

#[test]
fn bad_files_give_line_numbers_and_fixes() {
    let err = Dataset::from_csv_file(&csv("malformed.csv"), UTF_8, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 3: row has 3 fields but the header has 2; quote values that contain commas"
    );
    let err = Dataset::from_csv_file(&csv("gbk.csv"), UTF_8, None).unwrap_err();
    assert!(matches!(err, DatasetError::Decode { .. }), "{err}");
    let err = Dataset::from_csv_str("content\n", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "has a header row but no data rows; add at least one row"
    );
    let err = Dataset::from_csv_str("a,b\n1,2\n", Some("c")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no such column, got \"c\"; the columns are: a, b"
    );
    let err = Dataset::from_csv_file(&csv("nope.csv"), UTF_8, None).unwrap_err();
    assert_eq!(err.to_string(), "cannot read the file: no such file");
}

#[test]
fn scan_finds_placeholders_references_and_escapes() {
    assert_eq!(
        scan("Bearer ${KEY} for {{ content }}!"),
        [
            Piece::Text("Bearer "),
            Piece::Reference("KEY"),
            Piece::Text(" for "),
            Piece::Placeholder("content"),
            Piece::Text("!"),
        ]
    );
    assert_eq!(scan("{{内容}}"), [Piece::Placeholder("内容")]);
    // `$${` is a literal `${`; unclosed braces are text.
    let text: String = scan("a $${HOME} {{open ${x")
        .iter()
        .map(|p| match p {
            Piece::Text(t) => *t,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(text, "a ${HOME} {{open ${x");
    assert_eq!(
        scan("{\"a\": {\"b\": 1}}"),
        [Piece::Text("{\"a\": {\"b\": 1}}")]
    );
    assert_eq!(scan(""), []);
}

#[test]
fn redacted_shows_placeholders_and_hides_secrets() {
    let mut b = TemplateBuilder::new();
    b.literal("k=");
    b.secret(Secret::new("s3cr3t".to_owned()), false);
    b.literal("&q=");
    b.column(0, false);
    let t = b.build();
    assert_eq!(
        t.redacted(&["content".to_owned()]),
        "k=<redacted>&q={{content}}"
    );
    assert_eq!(
        t.render_to_string(Some(&["x y".to_owned()])),
        "k=s3cr3t&q=x y"
    );
    assert!(t.has_secret());
    assert!(!format!("{t:?}").contains("s3cr3t"));
    assert!(!Template::literal("plain").has_secret());
}

/// A JSON body template `{"content":"<column 0>","k":"<secret>"}`.
fn json_template(secret: &str) -> Template {
    let mut b = TemplateBuilder::new();
    b.literal("{\"content\":\"");
    b.column(0, true);
    b.literal("\",\"k\":\"");
    b.secret(Secret::new(secret.to_owned()), true);
    b.literal("\"}");
    b.build()
}

#[test]
fn hostile_values_render_to_valid_json() {
    for value in [
        "\"quoted\"",
        "back\\slash\\",
        "line\nbreak\r\n\ttab",
        "控制\u{0}\u{1f}字符",
        "emoji 🦀 and 中文",
        "</script>\u{2028}\u{2029}",
        "",
    ] {
        let rendered = json_template(value).render_to_string(Some(&[value.to_owned()]));
        let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(json["content"], value);
        assert_eq!(json["k"], value);
    }
}

proptest! {
    #[test]
    fn any_value_renders_to_json_holding_exactly_that_value(value in any::<String>()) {
        let rendered = json_template(&value).render_to_string(Some(std::slice::from_ref(&value)));
        let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        prop_assert_eq!(json["content"].as_str(), Some(value.as_str()));
        prop_assert_eq!(json["k"].as_str(), Some(value.as_str()));
    }

    #[test]
    fn any_csv_value_round_trips(value in any::<String>()) {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["content"]).unwrap();
        writer.write_record([value.as_str()]).unwrap();
        let bytes = writer.into_inner().unwrap();
        let data = Dataset::from_csv_bytes(&bytes, UTF_8, Some("content")).unwrap();
        prop_assert_eq!(data.row(0), [value]);
    }
}
