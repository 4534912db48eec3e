//! One behaviour suite for every [`Store`]: the same checks run on the
//! SQLite file and on PostgreSQL (`store_suite!` makes a `#[test]` of each
//! for a backend), so both keep the same semantics.

mod batches;
mod journal;
mod record;
mod responses;

pub(crate) use batches::*;
pub(crate) use journal::*;
pub(crate) use record::*;
pub(crate) use responses::*;

use arouter_core::manage::{KeyPatch, LimitReset, ModelAllowlist, TransactionQuery};

use super::{
    Credit, KeySpend, NewKey, Outcome, RateLimit, Store, StoreError, Totals, Transaction, Windows,
};

/// Opens a backend's store: each call a new handle on the same data (a
/// restart, as far as the store can tell).
pub(crate) trait Fixture {
    fn open(&self) -> Box<dyn Store>;
    /// Opens the store as a new process would after the last one stopped
    /// (every store opened before is dropped).
    fn restart(&self) -> Box<dyn Store> {
        self.open()
    }
}

/// A `#[test]` per check of the suite, each on a fresh fixture from
/// `$fixture` (an expression of type `Option<impl Fixture>`: `None` skips).
macro_rules! store_suite {
    ($fixture:expr) => {
        $crate::store::suite::store_suite!(@tests $fixture;
            creates_the_schema_and_reopens,
            credits_add_up_once_per_record_id_and_usage_is_the_sum_of_costs,
            a_batch_stored_again_adds_no_row_twice,
            a_batch_of_any_size_is_stored_once_in_its_order,
            keys_update_delete_and_spend,
            the_list_pages_calls_and_credits_newest_first,
            a_batch_runs_to_its_end_and_each_result_is_stored_once_with_its_bill,
            a_restart_puts_claimed_requests_back_and_cancel_ends_the_rest,
            expiry_ends_what_has_not_run_and_retention_deletes_ended_batches,
            lists_page_newest_first_in_both_directions,
            the_requests_not_run_yet_are_listed_with_what_they_may_cost,
            responses_are_kept_for_their_owner_until_they_expire,
            an_intent_closed_with_its_usage_is_never_billed_again,
            a_gone_gateways_open_intents_are_billed_at_their_prompt_once,
            gateways_recovering_at_once_bill_each_intent_once,
        );
    };
    (@tests $fixture:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                if let Some(fixture) = $fixture {
                    $crate::store::suite::$name(&fixture);
                }
            }
        )*
    };
}
pub(crate) use store_suite;

pub(crate) fn creates_the_schema_and_reopens(fixture: &dyn Fixture) {
    let store = fixture.open();
    assert!(store.load_keys().unwrap().is_empty());
    let new = new_key([7; 32]);
    let rec = store.insert_key(&new).unwrap();
    assert_eq!(rec.hash, [7; 32]);
    assert!(matches!(
        store.insert_key(&new),
        Err(StoreError::Conflict(_))
    ));
    drop(store);
    let reopened = fixture.open();
    assert_eq!(reopened.load_keys().unwrap(), vec![rec]);
    let t = Transaction {
        created_at: 1,
        key_id: Some(1),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_micros: 7,
        complete: false,
        estimated: true,
        referer: Some("https://app.example".into()),
        title: None,
        request_id: Some("req-1".into()),
        record_id: None,
        upstream_status: Some(200),
        outcome: Outcome::Estimated,
        generation_id: Some("chatcmpl-1".into()),
        cached_tokens: 2,
        reasoning_tokens: 1,
        stream: true,
        latency_ms: Some(40),
        batch: None,
    };
    reopened.record(&[t.clone(), t.clone()]).unwrap();
    assert_eq!(reopened.transactions(10).unwrap(), vec![t.clone(), t]);
}

pub(crate) fn credits_add_up_once_per_record_id_and_usage_is_the_sum_of_costs(
    fixture: &dyn Fixture,
) {
    let store = fixture.open();
    assert_eq!(store.totals().unwrap(), Totals::default());
    let credit = Credit {
        created_at: 1,
        amount_micros: 5_000_000,
        note: Some("top-up".into()),
        record_id: "credit-a".into(),
    };
    store.add_credit(&credit).unwrap();
    store.add_credit(&credit).unwrap();
    store
        .add_credit(&Credit {
            record_id: "credit-b".into(),
            amount_micros: 250,
            note: None,
            ..credit.clone()
        })
        .unwrap();
    store
        .record(&[spent(Some(1), 10, 1_000), spent(None, 11, 23)])
        .unwrap();
    assert_eq!(
        store.totals().unwrap(),
        Totals {
            credits: 5_000_250,
            usage: 1_023
        }
    );
    drop(store);
    let store = fixture.open();
    assert_eq!(store.totals().unwrap().credits, 5_000_250);
}

pub(crate) fn a_batch_stored_again_adds_no_row_twice(fixture: &dyn Fixture) {
    let store = fixture.open();
    let row = |id: &str| Transaction {
        created_at: 1,
        key_id: None,
        provider: "openai".into(),
        model: "m".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_micros: 3,
        complete: true,
        estimated: false,
        referer: None,
        title: None,
        request_id: Some("req-same".into()),
        record_id: Some(id.into()),
        upstream_status: Some(200),
        outcome: Outcome::Complete,
        generation_id: Some(format!("gen-{id}")),
        cached_tokens: 0,
        reasoning_tokens: 0,
        stream: false,
        latency_ms: None,
        batch: None,
    };
    store.record(&[row("a"), row("b")]).unwrap();
    // A retry of the same batch with one new row: only the new one.
    store.record(&[row("a"), row("b"), row("c")]).unwrap();
    let mut ids: Vec<_> = store
        .transactions(10)
        .unwrap()
        .into_iter()
        .filter_map(|t| t.record_id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
    // A row twice in one batch (a replay appended to the original) is
    // stored once, and the batch's other rows in their order.
    store.record(&[row("d"), row("e"), row("d")]).unwrap();
    let newest: Vec<_> = store
        .transactions(2)
        .unwrap()
        .into_iter()
        .filter_map(|t| t.record_id)
        .collect();
    assert_eq!(newest, ["e", "d"]);
    assert_eq!(store.transactions(10).unwrap().len(), 5);
    assert_eq!(store.totals().unwrap().usage, 15);
}

pub(crate) fn keys_update_delete_and_spend(fixture: &dyn Fixture) {
    let store = fixture.open();
    let rec = store.insert_key(&new_key([1; 32])).unwrap();
    assert_eq!(rec.label(), "sk-ar-abc...xyz");
    assert_eq!(rec.limit_micros, Some(3_000_000));
    assert!(rec.allowed_models.as_ref().unwrap().allows("openai", "x"));
    let patch = KeyPatch {
        name: Some("renamed".into()),
        limit_micros: Some(None),
        allowed_models: Some(None),
        disabled: Some(true),
        ..KeyPatch::default()
    };
    let updated = store.update_key(&[1; 32], &patch, 42).unwrap().unwrap();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.limit_micros,
            updated.disabled
        ),
        ("renamed", None, true)
    );
    assert_eq!(updated.allowed_models, None);
    assert_eq!(updated.updated_at, Some(42));
    // What was written is what is read back.
    assert_eq!(store.load_keys().unwrap(), vec![updated]);
    assert_eq!(store.update_key(&[2; 32], &patch, 43).unwrap(), None);

    let day = 1_000 * 86_400;
    store
        .record(&[
            spent(Some(rec.id), day - 10 * 86_400, 5),
            spent(Some(rec.id), day - 3 * 86_400, 7),
            spent(Some(rec.id), day + 60, 11),
            spent(None, day + 60, 1_000),
        ])
        .unwrap();
    let windows = Windows {
        day,
        week: day - 4 * 86_400,
        month: day - 5 * 86_400,
    };
    let s = store.key_spend(Some(rec.id), windows).unwrap();
    assert_eq!(
        (
            s.usage.total,
            s.usage.daily,
            s.usage.weekly,
            s.usage.monthly
        ),
        (23, 11, 18, 18)
    );
    assert_eq!(s.last_used_at, Some(day + 60));
    assert_eq!(store.key_spend(None, windows).unwrap().usage.total, 1_000);
    assert_eq!(
        store.key_spend(Some(999), windows).unwrap(),
        KeySpend::default()
    );
    // Several keys at once: each as asked one by one, in the order asked.
    assert_eq!(
        store.keys_usage(&[999, rec.id, 999], windows).unwrap(),
        vec![
            KeySpend::default().usage,
            s.usage,
            KeySpend::default().usage
        ]
    );
    assert!(store.keys_usage(&[], windows).unwrap().is_empty());

    assert!(store.delete_key(&[1; 32]).unwrap());
    assert!(!store.delete_key(&[1; 32]).unwrap());
    assert!(store.load_keys().unwrap().is_empty());
}

pub(crate) fn the_list_pages_calls_and_credits_newest_first(fixture: &dyn Fixture) {
    use arouter_core::manage::{Cursor, TransactionKind, TransactionStatus};
    let store = fixture.open();
    for (amount_micros, note, record_id) in [
        (1_000_000, Some("top-up"), "credit-a"),
        (2_000_000, None, "credit-b"),
    ] {
        store
            .add_credit(&Credit {
                created_at: 5,
                amount_micros,
                note: note.map(str::to_string),
                record_id: record_id.into(),
            })
            .unwrap();
    }
    let mut failed = spent(None, 4, 9);
    failed.outcome = Outcome::Error;
    store
        .record(&[spent(None, 5, 1), failed, spent(None, 6, 2)])
        .unwrap();
    let ids = |q: &TransactionQuery| -> Vec<String> {
        let page = store.list_transactions(q).unwrap();
        page.rows.into_iter().map(|r| r.id).collect()
    };
    let all = TransactionQuery {
        limit: 100,
        ..TransactionQuery::default()
    };
    let newest_first = [
        "gen-row-3",
        "gen-row-1",
        "credit-b",
        "credit-a",
        "gen-row-2",
    ];
    assert_eq!(ids(&all), newest_first);
    // Two at a time, through both tables, each row once.
    let mut paged = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list_transactions(&TransactionQuery {
                limit: 2,
                cursor,
                ..TransactionQuery::default()
            })
            .unwrap();
        paged.extend(page.rows.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
    let credit = &store.list_transactions(&all).unwrap().rows[3];
    assert_eq!(credit.kind, TransactionKind::Credit);
    assert_eq!(credit.cost_micros, 1_000_000);
    assert_eq!(credit.note.as_deref(), Some("top-up"));
    assert_eq!(credit.key_hash, None);
    // Filters a credit cannot meet leave it out.
    let failed_only = TransactionQuery {
        status: Some(TransactionStatus::Failed),
        ..all.clone()
    };
    assert_eq!(ids(&failed_only), ["gen-row-2"]);
    let by_model = TransactionQuery {
        model: Some("openai/m".into()),
        ..all.clone()
    };
    assert_eq!(ids(&by_model), ["gen-row-3", "gen-row-1", "gen-row-2"]);
    let in_second_5 = TransactionQuery {
        since: Some(5),
        until: Some(6),
        ..all.clone()
    };
    assert_eq!(ids(&in_second_5), ["gen-row-1", "credit-b", "credit-a"]);
}

pub(crate) fn new_key(hash: [u8; 32]) -> NewKey {
    NewKey {
        hash,
        prefix: "sk-ar-abc".into(),
        suffix: "xyz".into(),
        name: "ci".into(),
        management: false,
        rate_limit: Some(RateLimit {
            requests: 5,
            period_secs: 60,
        }),
        created_at: 1_700_000_000,
        limit_micros: Some(3_000_000),
        limit_reset: Some(LimitReset::Monthly),
        include_byok_in_limit: false,
        expires_at: None,
        allowed_models: ModelAllowlist::new(vec!["openai/*".into()]).ok(),
    }
}

pub(crate) fn spent(key_id: Option<i64>, created_at: i64, cost_micros: u64) -> Transaction {
    Transaction {
        created_at,
        key_id,
        provider: "openai".into(),
        model: "m".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_micros,
        complete: true,
        estimated: false,
        referer: None,
        title: None,
        request_id: None,
        record_id: None,
        upstream_status: Some(200),
        outcome: Outcome::Complete,
        generation_id: None,
        cached_tokens: 0,
        reasoning_tokens: 0,
        stream: false,
        latency_ms: None,
        batch: None,
    }
}
