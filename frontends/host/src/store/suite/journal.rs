//! The call journal (`store::journal`): intents closed with their usage,
//! and those a gone gateway left billed once, whoever recovers them.

use arouter_core::manage::{TransactionQuery, TransactionStatus};

use super::{spent, Fixture};
use crate::store::{Intent, Outcome, Recovered, Windows};

fn intent(n: u32, key_id: Option<i64>, prompt_micros: u64) -> Intent {
    Intent {
        id: format!("inst-0-{n:x}"),
        created_at: 100 + i64::from(n),
        key_id,
        request_id: format!("req-{n}"),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        reserved_micros: prompt_micros * 10,
        prompt_tokens: 40,
        prompt_micros,
        stream: n.is_multiple_of(2),
    }
}

const ALL_TIME: Windows = Windows {
    day: 0,
    week: 0,
    month: 0,
};

pub(crate) fn an_intent_closed_with_its_usage_is_never_billed_again(fixture: &dyn Fixture) {
    let store = fixture.open();
    let (a, b) = (intent(1, Some(7), 30), intent(2, Some(7), 50));
    store.open_intents(&[a.clone(), b.clone()]).unwrap();
    // Written again (a retried commit): still one intent each.
    store.open_intents(std::slice::from_ref(&a)).unwrap();
    let mut billed = spent(Some(7), 101, 400);
    billed.record_id = Some("rec-a".into());
    store
        .settle(std::slice::from_ref(&billed), std::slice::from_ref(&a.id))
        .unwrap();
    // A live store's own intents are not a gone gateway's.
    assert_eq!(store.recover_intents().unwrap(), Recovered::default());
    // `b` ended with no provider call (nothing to bill): closed alone.
    store.settle(&[], std::slice::from_ref(&b.id)).unwrap();
    drop(store);
    let next = fixture.restart();
    assert_eq!(next.recover_intents().unwrap(), Recovered::default());
    assert_eq!(next.totals().unwrap().usage, 400);
    assert_eq!(next.transactions(10).unwrap(), vec![billed]);
}

pub(crate) fn a_gone_gateways_open_intents_are_billed_at_their_prompt_once(fixture: &dyn Fixture) {
    let store = fixture.open();
    let open = [
        intent(1, Some(7), 30),
        intent(2, None, 50),
        intent(3, Some(7), 0),
    ];
    store.open_intents(&open).unwrap();
    let mut billed = spent(Some(7), 100, 400);
    billed.record_id = Some("rec-0".into());
    store.record(&[billed]).unwrap();
    drop(store);
    // The gateway is gone: the next start bills what it left open.
    let next = fixture.restart();
    assert_eq!(
        next.recover_intents().unwrap(),
        Recovered {
            calls: 3,
            micros: 80
        }
    );
    assert_eq!(next.recover_intents().unwrap(), Recovered::default());
    assert_eq!(next.totals().unwrap().usage, 480);
    assert_eq!(next.key_spend(Some(7), ALL_TIME).unwrap().usage.total, 430);
    let mut rows = next.transactions(10).unwrap();
    rows.retain(|t| t.outcome == Outcome::Interrupted);
    rows.sort_by_key(|t| t.created_at);
    assert_eq!(rows.len(), 3);
    for (row, i) in rows.iter().zip(&open) {
        assert_eq!(row.record_id.as_deref(), Some(&*format!("intent-{}", i.id)));
        assert_eq!(row.request_id.as_deref(), Some(&*i.request_id));
        assert_eq!(row.generation_id, Some(format!("gen-{}", i.request_id)));
        assert_eq!((row.key_id, row.created_at), (i.key_id, i.created_at));
        assert_eq!((&*row.provider, &*row.model), ("openai", "gpt-4o-mini"));
        assert_eq!((row.prompt_tokens, row.completion_tokens), (40, 0));
        assert_eq!(row.cost_micros, i.prompt_micros);
        assert!(row.estimated && !row.complete);
        assert_eq!(row.stream, i.stream);
    }
    // The list shows them as interrupted, and finds them by that status.
    let page = next
        .list_transactions(&TransactionQuery {
            limit: 10,
            status: Some(TransactionStatus::Interrupted),
            ..TransactionQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows.len(), 3);
    assert!(page
        .rows
        .iter()
        .all(|r| r.status == TransactionStatus::Interrupted));
    // The usage of a recovered call arriving after all (its gateway was
    // taken for gone, not gone) finds its intent gone: the real bill is
    // stored and replaces the interrupted estimate, one row for the call.
    let mut late = spent(Some(7), 200, 5);
    late.record_id = Some("rec-late".into());
    next.settle(std::slice::from_ref(&late), &[open[0].id.clone()])
        .unwrap();
    assert_eq!(next.totals().unwrap().usage, 480 - 30 + 5);
    assert_eq!(
        next.key_spend(Some(7), ALL_TIME).unwrap().usage.total,
        430 - 30 + 5
    );
    let rows = next.transactions(10).unwrap();
    assert!(!rows
        .iter()
        .any(|t| t.record_id.as_deref() == Some(&*format!("intent-{}", open[0].id))));
    assert!(rows.contains(&late));
}

pub(crate) fn gateways_recovering_at_once_bill_each_intent_once(fixture: &dyn Fixture) {
    let store = fixture.open();
    let open: Vec<Intent> = (0..60).map(|n| intent(n, Some(3), 10)).collect();
    store.open_intents(&open).unwrap();
    drop(store);
    let first = fixture.restart();
    let others: Vec<_> = (0..3).map(|_| fixture.open()).collect();
    let stores: Vec<_> = std::iter::once(first).chain(others).collect();
    let barrier = std::sync::Barrier::new(stores.len());
    let recovered: Vec<Recovered> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store.recover_intents().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let calls: u64 = recovered.iter().map(|r| r.calls).sum();
    let micros: u64 = recovered.iter().map(|r| r.micros).sum();
    assert_eq!((calls, micros), (60, 600), "{recovered:?}");
    assert_eq!(stores[0].transactions(100).unwrap().len(), 60);
    assert_eq!(stores[0].totals().unwrap().usage, 600);
}
