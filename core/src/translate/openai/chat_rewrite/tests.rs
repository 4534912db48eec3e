//! The one pass held to the tree path it replaces.

use proptest::prelude::*;

use super::*;
use crate::translate::openai::response::normalize_chat_tree;

fn price() -> Price {
    Price {
        input: 150_000,
        output: 600_000,
        cached_input: 75_000,
        cache_write: 150_000,
        reasoning: 600_000,
    }
}

/// The one pass gives what the tree gives, or gives up (and the caller
/// then takes the tree path, so the client sees the same either way).
fn same_as_tree(body: &[u8]) -> bool {
    let tree = normalize_chat_tree(body, "openai", "gpt-4o", &price());
    match rewrite_chat(body, "openai", "gpt-4o", &price()) {
        Ok(one_pass) => {
            let tree = tree.expect("the tree path reads what the one pass read");
            assert_eq!(
                String::from_utf8_lossy(&one_pass.bytes),
                String::from_utf8_lossy(&tree.bytes),
                "body {}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(one_pass.usage, tree.usage);
            assert_eq!(one_pass.id, tree.id);
            true
        }
        Err(GiveUp) => false,
    }
}

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,
    "model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant",
    "content":"Hello \u00e9\/ \ud83d\ude00 \"there\"","refusal":null},"logprobs":null,
    "finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,
    "total_tokens":19,"prompt_tokens_details":{"cached_tokens":0},"cost":0.5},
    "system_fingerprint":"fp_1", "score": -0, "big": 1e3, "small": 2.50E-3}"#;

#[test]
fn a_typical_answer_takes_the_one_pass_and_matches_the_tree() {
    assert!(same_as_tree(ANSWER.as_bytes()));
}

#[test]
fn added_keys_land_where_the_tree_puts_them() {
    for body in [
        r#"{"choices":[{},{"message":{"tool_calls":[{"id":"a"}]}},{"message":{"tool_calls":[]}}]}"#,
        r#"{"choices":[{"finish_reason":"tool_use","native_finish_reason":"x"}],"usage":{}}"#,
        r#"{"choices":[{"native_finish_reason":null,"finish_reason":"MAX_TOKENS"}],"model":7}"#,
        r#"{"choices":[1,"two",null,[{}]],"usage":{"prompt_tokens":3,"completion_tokens":4,"cost":1}}"#,
        // A finish reason that is not a string: replaced in place by a
        // word that depends on `message`, here after it.
        r#"{"choices":[{"finish_reason":null,"message":{"tool_calls":[1]}}]}"#,
        r#"{"choices":[{"finish_reason":7,"index":0},{"finish_reason":{},"message":[]}]}"#,
        // Escapes serde_json writes back as they are, and ones it does not.
        r#"{"id":"a\"b\\c\n\t\r\b\f\u0001\u001f","model":"m\/x\u00e9\u001F\u0008"}"#,
        r#"{"choices":[{"finish_reason":"T\u006fol_calls"}],"model":"\ud83d\ude00"}"#,
        // Numbers serde_json keeps as integers, and ones it reads as f64.
        r#"{"a":[0,-1,9223372036854775807,-9223372036854775808,18446744073709551615]}"#,
        r#"{"a":[-0,-9223372036854775809,18446744073709551616,1E2,1e-7,0.10,-0.0e0]}"#,
        // Whitespace anywhere serde_json allows it.
        " \t\r\n{ \"model\" :\t\"x\" ,\r\n\"choices\":[ { } , [ ] ] , \"usage\" : { } }\n ",
        r#"{"choices":{"finish_reason":null},"id":"","usage":[1]}"#,
        r#"{}"#,
        r#"{"usage":{"cost":9,"prompt_tokens":1000,"completion_tokens":-2,"prompt_tokens_details":{"cached_tokens":400,"cache_write_tokens":1.5},"completion_tokens_details":{"reasoning_tokens":70}}}"#,
        r#"{"usage":{"prompt_tokens_details":[],"completion_tokens_details":null,"completion_tokens":18446744073709551615}}"#,
    ] {
        assert!(same_as_tree(body.as_bytes()), "{body}");
    }
}

#[test]
fn what_one_pass_cannot_follow_goes_to_the_tree() {
    for body in [
        // A repeated key: the tree keeps the last value, first place.
        r#"{"model":"a","model":"b"}"#,
        r#"{"choices":[{"message":{"content":"a","content":"b"}}]}"#,
        // A key with an escape in it.
        r#"{"mod\u0065l":"a"}"#,
        // A key with an escape serde_json would write back the same.
        r#"{"a\nb":1}"#,
        // Not JSON serde_json reads.
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":-}"#,
        r#"{"a":1e400}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\x"}"#,
        "{\"a\":\"\u{1}\"}",
        "{\"a\":\"\u{b}\"}",
        "{\u{c}\"a\":1}",
        r#"{"a":[1,]}"#,
        r#"{"a":1,}"#,
        r#"{"a":tru}"#,
        r#"{"a":nullx}"#,
        r#"{"a":1}}"#,
        // Not an answer at all.
        r#"[1,2]"#,
        r#"{"a":1} trailing"#,
        r#"{"a":"#,
    ] {
        assert!(!same_as_tree(body.as_bytes()), "{body}");
        // What the caller then sends comes from the tree.
        let public =
            super::super::response::normalize_chat(body.as_bytes(), "openai", "gpt-4o", &price());
        let tree = normalize_chat_tree(body.as_bytes(), "openai", "gpt-4o", &price());
        assert_eq!(public.map(|a| a.bytes), tree.map(|a| a.bytes));
    }
}

/// How a string's characters are written.
#[derive(Clone, Copy, Debug)]
enum Escapes {
    /// As serde_json writes them: only what must be escaped, short forms.
    Minimal,
    /// Every character but letters and digits as `\uXXXX`, `/` as `\/`.
    Unicode,
    /// The same in upper case hex.
    UnicodeUpper,
}

#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    let mut all: String = (0u8..0x80).map(char::from).collect();
    all.push_str("\u{e9}\u{2028}\u{1f600}\u{fffd}");
    for s in [all.as_str(), "", "plain", "\u{0}"] {
        let mut ours = b"\"".to_vec();
        scan::push_escaped(&mut ours, s);
        ours.push(b'"');
        assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
    }
}

/// A JSON value written the way providers might: any spacing, strings
/// with or without escapes, numbers in any form, keys repeated.
#[derive(Clone, Debug)]
enum Raw {
    Lit(&'static str),
    Num(String),
    Str(String, Escapes),
    Arr(Vec<Raw>),
    Obj(Vec<(String, Raw)>),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("model"),
        Just("choices"),
        Just("usage"),
        Just("id"),
        Just("message"),
        Just("tool_calls"),
        Just("finish_reason"),
        Just("native_finish_reason"),
        Just("prompt_tokens"),
        Just("completion_tokens"),
        Just("cost"),
        Just("prompt_tokens_details"),
        Just("completion_tokens_details"),
        Just("cached_tokens"),
        Just("cache_write_tokens"),
        Just("reasoning_tokens"),
        Just("content"),
        Just("index"),
    ]
    .prop_map(String::from)
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u32..1000).prop_map(|n| n.to_string()),
        Just("-0".to_string()),
        Just("-0.0".to_string()),
        Just("1e400".to_string()),
        (-1e6f64..1e6).prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        Just("18446744073709551616".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("0.1e-2".to_string()),
        (1u32..99, -30i32..30).prop_map(|(m, e)| format!("{m}.50E{e}")),
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    let leaf = prop_oneof![
        Just(Raw::Lit("null")),
        Just(Raw::Lit("true")),
        Just(Raw::Lit("false")),
        number().prop_map(Raw::Num),
        (
            prop_oneof![
                "[a-z/ ]{0,8}",
                "[\\x00-\\x1f\"\\\\/a-z\u{7f}\u{e9}\u{1f600}]{0,8}",
                Just("stop".to_string()),
                Just("tool_calls".to_string()),
                Just("MAX_TOKENS".to_string()),
                "\\PC{0,6}"
            ],
            prop_oneof![
                Just(Escapes::Minimal),
                Just(Escapes::Unicode),
                Just(Escapes::UnicodeUpper)
            ]
        )
            .prop_map(|(s, escapes)| Raw::Str(s, escapes)),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Raw::Arr),
            prop::collection::vec((key(), inner), 0..6).prop_map(Raw::Obj),
        ]
    })
}

fn answer() -> impl Strategy<Value = Raw> {
    let choice = prop::collection::vec((key(), raw()), 0..5).prop_map(Raw::Obj);
    let fields = (
        prop::collection::vec(choice, 0..3).prop_map(Raw::Arr),
        raw(),
        prop::collection::vec((key(), raw()), 0..4),
    );
    fields.prop_map(|(choices, usage, rest)| {
        let mut fields = vec![
            ("choices".to_string(), choices),
            ("usage".to_string(), usage),
        ];
        fields.extend(rest);
        Raw::Obj(fields)
    })
}

/// Keeps the first of each repeated key, at every depth.
fn distinct_keys(raw: Raw) -> Raw {
    match raw {
        Raw::Arr(items) => Raw::Arr(items.into_iter().map(distinct_keys).collect()),
        Raw::Obj(fields) => {
            let mut kept: Vec<(String, Raw)> = Vec::new();
            for (k, v) in fields {
                if !kept.iter().any(|(seen, _)| *seen == k) {
                    kept.push((k, distinct_keys(v)));
                }
            }
            Raw::Obj(kept)
        }
        other => other,
    }
}

fn write_str(out: &mut String, s: &str, escapes: Escapes) {
    out.push('"');
    for c in s.chars() {
        let unicode = match escapes {
            Escapes::Minimal => None,
            Escapes::Unicode => Some(false),
            Escapes::UnicodeUpper => Some(true),
        };
        match (c, unicode) {
            ('"', _) => out.push_str("\\\""),
            ('\\', _) => out.push_str("\\\\"),
            ('/', Some(_)) => out.push_str("\\/"),
            ('\n', None) => out.push_str("\\n"),
            ('\t', None) => out.push_str("\\t"),
            ('\u{8}', None) => out.push_str("\\b"),
            (c, upper) if (c as u32) < 0x20 || (upper.is_some() && !c.is_ascii_alphanumeric()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    match upper {
                        Some(true) => out.push_str(&format!("\\u{unit:04X}")),
                        _ => out.push_str(&format!("\\u{unit:04x}")),
                    }
                }
            }
            (c, _) => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, raw: &Raw, space: &str) {
    match raw {
        Raw::Lit(l) => out.push_str(l),
        Raw::Num(n) => out.push_str(n),
        Raw::Str(s, escapes) => write_str(out, s, *escapes),
        Raw::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(space);
                write(out, item, space);
            }
            out.push(']');
        }
        Raw::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(space);
                write_str(out, k, Escapes::Minimal);
                out.push_str(space);
                out.push(':');
                write(out, v, space);
            }
            out.push_str(space);
            out.push('}');
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_one_pass_writes_what_the_tree_writes(
        answer in answer(),
        space in prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t"), Just("\r\n")],
        edge in prop_oneof![Just(""), Just(" "), Just("\n")],
    ) {
        let mut body = String::from(edge);
        write(&mut body, &answer, space);
        body.push_str(edge);
        same_as_tree(body.as_bytes());
    }

    /// Bytes that are not (or no longer) JSON serde_json reads: the one
    /// pass must give up wherever the tree refuses them.
    #[test]
    fn a_damaged_answer_is_refused_as_the_tree_refuses_it(
        answer in answer(),
        space in prop_oneof![Just(""), Just(" ")],
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![
            Just(None),
            prop::sample::select(b"{}[],:\"\\/ -.eE0123456789aAtnu\x00\x1f\xc3\xff".to_vec()).prop_map(Some),
        ],
    ) {
        let mut body = String::new();
        write(&mut body, &distinct_keys(answer), space);
        let mut body = body.into_bytes();
        let at = at.index(body.len());
        match byte {
            Some(b) => body[at] = b,
            None => {
                body.remove(at);
            }
        }
        same_as_tree(&body);
    }

    #[test]
    fn without_repeated_keys_the_one_pass_writes_what_the_tree_writes(
        answer in answer(),
        space in prop_oneof![Just(""), Just(" "), Just("\n  ")],
    ) {
        let mut body = String::new();
        write(&mut body, &distinct_keys(answer), space);
        // Keys apart, only what the tree refuses (a number out of range)
        // may leave the one pass.
        let tree = normalize_chat_tree(body.as_bytes(), "openai", "gpt-4o", &price());
        prop_assert_eq!(same_as_tree(body.as_bytes()), tree.is_some(), "{}", body);
    }
}

#[test]
fn the_eight_byte_step_stops_at_the_first_byte_that_ends_a_plain_run() {
    let fillers = [b'a', b' ', b'!', 0x7f, 0x80, 0xc3, 0xff, b'#', b']', b'['];
    for special in (0u8..0x20).chain([b'"', b'\\']) {
        for at in 0..8 {
            for filler in fillers {
                let mut chunk = [filler; 8];
                chunk[at] = special;
                // Whatever follows it must not move the answer.
                for after in &mut chunk[at + 1..] {
                    *after = special.wrapping_sub(1);
                }
                let got = scan::first_special(u64::from_le_bytes(chunk));
                assert_eq!(got, at, "{chunk:?}");
            }
        }
    }
    for filler in fillers {
        assert_eq!(scan::first_special(u64::from_le_bytes([filler; 8])), 8);
    }
}
