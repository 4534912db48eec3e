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
        // A finish reason that is not a string.
        r#"{"choices":[{"finish_reason":null,"message":{"tool_calls":[1]}}]}"#,
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

/// A JSON value written the way providers might: any spacing, strings
/// with or without escapes, numbers in any form, keys repeated.
#[derive(Clone, Debug)]
enum Raw {
    Lit(&'static str),
    Num(String),
    Str(String, bool),
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
                Just("stop".to_string()),
                Just("tool_calls".to_string()),
                Just("MAX_TOKENS".to_string()),
                "\\PC{0,6}"
            ],
            any::<bool>()
        )
            .prop_map(|(s, escaped)| Raw::Str(s, escaped)),
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

fn write_str(out: &mut String, s: &str, escaped: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if escaped => out.push_str("\\/"),
            c if (c as u32) < 0x20 || (escaped && !c.is_ascii_alphanumeric()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, raw: &Raw, space: &str) {
    match raw {
        Raw::Lit(l) => out.push_str(l),
        Raw::Num(n) => out.push_str(n),
        Raw::Str(s, escaped) => write_str(out, s, *escaped),
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
                write_str(out, k, false);
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
        space in prop_oneof![Just(""), Just(" "), Just("\n  ")],
    ) {
        let mut body = String::new();
        write(&mut body, &answer, space);
        same_as_tree(body.as_bytes());
    }

    #[test]
    fn without_repeated_keys_the_one_pass_writes_what_the_tree_writes(
        answer in answer(),
        space in prop_oneof![Just(""), Just(" "), Just("\n  ")],
    ) {
        let mut body = String::new();
        write(&mut body, &distinct_keys(answer), space);
        same_as_tree(body.as_bytes());
    }
}
