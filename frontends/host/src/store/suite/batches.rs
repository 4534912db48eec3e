use arouter_core::batch::{ItemEnd, ListCursor, ListQuery, NewBatch, NewItem, Status};

use super::{spent, Fixture};
use crate::store::{BatchRef, Deleted, Results, Transaction, Wanted};

fn batch(n: usize) -> NewBatch {
    NewBatch {
        items: (0..n)
            .map(|i| NewItem {
                custom_id: format!("c{i}"),
                params: format!(r#"{{"model":"openai/m","n":{i}}}"#),
                max_cost_micros: 10 + i as u64,
            })
            .collect(),
        bytes: 100,
    }
}

fn billed(item: &crate::store::BatchItem, record_id: &str) -> Transaction {
    let mut t = spent(item.owner, 10, 5);
    t.record_id = Some(record_id.into());
    t.batch = Some(BatchRef {
        batch_id: item.batch_id.clone(),
        custom_id: item.custom_id.clone(),
    });
    t
}

pub(crate) fn a_batch_runs_to_its_end_and_each_result_is_stored_once_with_its_bill(
    fixture: &dyn Fixture,
) {
    let store = fixture.open();
    let view = store
        .create_batch("msgbatch_a", Some(7), &batch(2), 10, 1000)
        .unwrap();
    assert_eq!(
        (view.status, view.counts.processing),
        (Status::InProgress, 2)
    );
    let claimed = store.claim_batch_requests(10).unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!((claimed[0].idx, claimed[0].owner), (0, Some(7)));
    assert!(
        store.claim_batch_requests(10).unwrap().is_empty(),
        "claimed once"
    );
    assert_eq!(
        store.batch_request_wanted(&claimed[0], 20).unwrap(),
        Wanted::Run
    );

    let ok = ItemEnd::Succeeded(br#"{"id":"msg"}"#.to_vec());
    store
        .finish_batch_request(&claimed[0], &ok, &[billed(&claimed[0], "r0")], 20)
        .unwrap();
    // Finishing again (a retried write) stores neither the end nor the bill twice.
    store
        .finish_batch_request(&claimed[0], &ok, &[billed(&claimed[0], "r0b")], 20)
        .unwrap();
    assert_eq!(store.transactions(10).unwrap().len(), 1);
    assert_eq!(
        store.batch_results("msgbatch_a", Some(7)).unwrap(),
        Results::NotEnded
    );

    store
        .finish_batch_request(&claimed[1], &ItemEnd::Errored(b"{}".to_vec()), &[], 30)
        .unwrap();
    let ended = store.batch("msgbatch_a", Some(7)).unwrap().unwrap();
    assert_eq!((ended.status, ended.ended_at), (Status::Ended, Some(30)));
    assert_eq!((ended.counts.succeeded, ended.counts.errored), (1, 1));
    let Results::Lines(lines) = store.batch_results("msgbatch_a", Some(7)).unwrap() else {
        panic!("ended");
    };
    let text = String::from_utf8(lines).unwrap();
    assert!(
        text.starts_with(
            r#"{"custom_id":"c0","result":{"type":"succeeded","message":{"id":"msg"}}}"#
        ),
        "{text}"
    );
    let rows = store.transactions(10).unwrap();
    assert_eq!(
        rows[0].batch.as_ref().map(|b| b.custom_id.as_str()),
        Some("c0")
    );
    // Another key sees nothing.
    assert_eq!(store.batch("msgbatch_a", Some(8)).unwrap(), None);
    assert_eq!(
        store.delete_batch("msgbatch_a", Some(8)).unwrap(),
        Deleted::NotFound
    );
    assert_eq!(
        store.delete_batch("msgbatch_a", Some(7)).unwrap(),
        Deleted::Deleted
    );
    assert_eq!(store.batch("msgbatch_a", Some(7)).unwrap(), None);
    assert_eq!(
        store.transactions(10).unwrap().len(),
        1,
        "transactions stay"
    );
}

pub(crate) fn a_restart_puts_claimed_requests_back_and_cancel_ends_the_rest(fixture: &dyn Fixture) {
    let store = fixture.open();
    store
        .create_batch("msgbatch_b", None, &batch(3), 10, 1000)
        .unwrap();
    let claimed = store.claim_batch_requests(1).unwrap();
    drop(store);
    let store = fixture.restart();
    assert_eq!(store.reopen_batch_requests().unwrap(), 1);
    let again = store.claim_batch_requests(1).unwrap();
    assert_eq!(again, claimed, "the oldest pending request again");

    let canceling = store.cancel_batch("msgbatch_b", None, 20).unwrap().unwrap();
    assert_eq!(canceling.status, Status::Canceling);
    assert_eq!(
        (canceling.counts.canceled, canceling.counts.processing),
        (2, 1)
    );
    assert_eq!(
        store.batch_request_wanted(&again[0], 21).unwrap(),
        Wanted::Cancel
    );
    assert!(store.delete_batch("msgbatch_b", None).unwrap() == Deleted::NotEnded);
    store
        .finish_batch_request(&again[0], &ItemEnd::Canceled, &[], 22)
        .unwrap();
    let ended = store.batch("msgbatch_b", None).unwrap().unwrap();
    assert_eq!((ended.status, ended.counts.canceled), (Status::Ended, 3));
    assert_eq!(ended.cancel_initiated_at, Some(20));
}

pub(crate) fn expiry_ends_what_has_not_run_and_retention_deletes_ended_batches(
    fixture: &dyn Fixture,
) {
    let store = fixture.open();
    store
        .create_batch("msgbatch_c", None, &batch(2), 10, 100)
        .unwrap();
    let claimed = store.claim_batch_requests(1).unwrap();
    assert_eq!(store.expire_batches(99).unwrap(), Vec::<String>::new());
    assert_eq!(
        store.expire_batches(100).unwrap(),
        vec!["msgbatch_c".to_string()]
    );
    assert_eq!(
        store.batch_request_wanted(&claimed[0], 100).unwrap(),
        Wanted::Expire
    );
    store
        .finish_batch_request(&claimed[0], &ItemEnd::Expired, &[], 101)
        .unwrap();
    let ended = store.batch("msgbatch_c", None).unwrap().unwrap();
    assert_eq!((ended.status, ended.counts.expired), (Status::Ended, 2));
    assert_eq!(store.purge_batches(101).unwrap(), 0);
    assert_eq!(store.purge_batches(102).unwrap(), 1);
    assert_eq!(store.batch("msgbatch_c", None).unwrap(), None);
}

pub(crate) fn lists_page_newest_first_in_both_directions(fixture: &dyn Fixture) {
    let store = fixture.open();
    for i in 0..5 {
        store
            .create_batch(&format!("msgbatch_{i}"), Some(1), &batch(1), i, 1000)
            .unwrap();
    }
    store
        .create_batch("msgbatch_other", Some(2), &batch(1), 9, 1000)
        .unwrap();
    let ids = |views: Vec<arouter_core::batch::BatchView>| {
        views.into_iter().map(|v| v.id).collect::<Vec<_>>()
    };
    let list = |cursor| {
        store
            .list_batches(Some(1), &ListQuery { limit: 2, cursor })
            .unwrap()
    };
    let (first, more) = list(None);
    assert_eq!(
        (ids(first), more),
        (vec!["msgbatch_4".to_string(), "msgbatch_3".into()], true)
    );
    let (next, more) = list(Some(ListCursor::After("msgbatch_3".into())));
    assert_eq!(
        (ids(next), more),
        (vec!["msgbatch_2".to_string(), "msgbatch_1".into()], true)
    );
    let (last, more) = list(Some(ListCursor::After("msgbatch_1".into())));
    assert_eq!((ids(last), more), (vec!["msgbatch_0".to_string()], false));
    let (back, more) = list(Some(ListCursor::Before("msgbatch_1".into())));
    assert_eq!(
        (ids(back), more),
        (vec!["msgbatch_3".to_string(), "msgbatch_2".into()], true)
    );
    let (unknown, _) = list(Some(ListCursor::After("msgbatch_other".into())));
    assert!(unknown.is_empty(), "another key's batch is no cursor");
}

pub(crate) fn the_requests_not_run_yet_are_listed_with_what_they_may_cost(fixture: &dyn Fixture) {
    let store = fixture.open();
    store
        .create_batch("msgbatch_u", Some(3), &batch(3), 10, 1000)
        .unwrap();
    store
        .create_batch("msgbatch_v", None, &batch(1), 11, 1000)
        .unwrap();
    let claimed = store.claim_batch_requests(1).unwrap();
    store
        .finish_batch_request(&claimed[0], &ItemEnd::Canceled, &[], 12)
        .unwrap();
    store.cancel_batch("msgbatch_v", None, 13).unwrap();
    let unrun = store.unrun_batch_requests().unwrap();
    let got: Vec<_> = unrun
        .iter()
        .map(|u| (u.batch_id.as_str(), u.idx, u.owner, u.max_cost_micros))
        .collect();
    assert_eq!(
        got,
        [
            ("msgbatch_u", 1, Some(3), 11),
            ("msgbatch_u", 2, Some(3), 12)
        ]
    );
}
