//! Credit leases on the shared store (see [`crate::store::lease`]).
//!
//! Grants are serialised by one transaction-scoped advisory lock, so two
//! gateways never both take the same free credit; what is free is read in
//! one statement (one snapshot). Nothing else needs the lock: a settlement
//! moves a cost from a lease to the spending in one transaction (what is
//! free stays the same), and a return or credit added only frees more.

use postgres::GenericClient;

use super::{backend, signed, unsigned, PostgresStore};
use crate::store::{LeaseLine, LeaseStore, StoreError};

/// The advisory lock grants take (any constant other locks do not use).
const GRANT_LOCK: i64 = 0x6172_6f75_7465_6c31; // "aroutel1"

/// The `line` column of the account's balance (key ids start at 1).
const ACCOUNT: i64 = 0;

/// Whether the gateway whose claim key is in `holder` still runs: its
/// session advisory lock is held (as for batch claims).
const HOLDER_ALIVE: &str = "EXISTS (
     SELECT 1 FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = ((holder >> 32) & 4294967295)::oid
       AND l.objid = (holder & 4294967295)::oid)";

impl LeaseStore for PostgresStore {
    fn grant(&self, line: LeaseLine, want: u64) -> Result<u64, StoreError> {
        let want = signed(want, "a lease")?;
        self.in_transaction(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&GRANT_LOCK])
                .map_err(backend)?;
            // A gone gateway's calls in flight are billed from its journal
            // (`call_intents`) by whichever gateway recovers them; its
            // leases, which cover them, are freed only after that.
            tx.execute(
                &format!(
                    "DELETE FROM credit_leases WHERE NOT {HOLDER_ALIVE}
                     AND NOT EXISTS (SELECT 1 FROM call_intents WHERE owner = holder)"
                ),
                &[],
            )
            .map_err(backend)?;
            let (id, window, free) = match line {
                LeaseLine::Account => (ACCOUNT, 0, account_free(tx)?),
                LeaseLine::Key(key) => {
                    let window = i32::from_ne_bytes(key.window.to_ne_bytes());
                    tx.execute(
                        "DELETE FROM credit_leases WHERE line = $1 AND window_id <> $2",
                        &[&key.id, &window],
                    )
                    .map_err(backend)?;
                    let limit = signed(key.limit_micros, "a limit")?;
                    let free = key_free(tx, key.id, limit, key.window_start, window)?;
                    (key.id, window, free)
                }
            };
            let granted = want.min(free.max(0));
            if granted == 0 {
                return Ok(0);
            }
            tx.execute(
                "INSERT INTO credit_leases (holder, line, window_id, held_micros)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (holder, line) DO UPDATE SET
                     held_micros = CASE WHEN credit_leases.window_id = EXCLUDED.window_id
                         THEN credit_leases.held_micros + EXCLUDED.held_micros
                         ELSE EXCLUDED.held_micros END,
                     window_id = EXCLUDED.window_id",
                &[&self.claim_key, &id, &window, &granted],
            )
            .map_err(backend)?;
            Ok(unsigned(granted))
        })
    }

    fn give_back(&self, line: LeaseLine, amount: u64) -> Result<(), StoreError> {
        let amount = signed(amount, "a lease")?;
        let id = match line {
            LeaseLine::Account => ACCOUNT,
            LeaseLine::Key(key) => key.id,
        };
        self.with(|client| {
            client
                .execute(
                    "UPDATE credit_leases SET held_micros = GREATEST(held_micros - $3, 0)
                     WHERE holder = $1 AND line = $2",
                    &[&self.claim_key, &id, &amount],
                )
                .map(drop)
                .map_err(backend)
        })
    }

    fn forget(&self, id: i64) -> Result<(), StoreError> {
        self.with(|client| {
            client
                .execute(
                    "DELETE FROM credit_leases WHERE holder = $1 AND line = $2",
                    &[&self.claim_key, &id],
                )
                .map(drop)
                .map_err(backend)
        })
    }

    fn session(&self) -> u64 {
        self.sessions.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The account's credits less its costs less every lease on it.
fn account_free(tx: &mut impl GenericClient) -> Result<i64, StoreError> {
    tx.query_one(
        "SELECT ((SELECT COALESCE(SUM(amount_micros), 0) FROM credits)
               - (SELECT COALESCE(SUM(cost_micros), 0) FROM spend_total)
               - (SELECT COALESCE(SUM(held_micros), 0) FROM credit_leases WHERE line = 0))::BIGINT",
        &[],
    )
    .and_then(|row| row.try_get(0))
    .map_err(backend)
}

/// A key's limit less what it spent since `start` (a UTC midnight, or 0)
/// less every lease on it in `window`. The limit is the lower of the
/// caller's and the keys table's: a gateway that has not heard of a
/// lowered limit yet is granted no more than the new one allows (and none
/// of a key that lost its limit or is gone).
fn key_free(
    tx: &mut impl GenericClient,
    id: i64,
    limit: i64,
    start: i64,
    window: i32,
) -> Result<i64, StoreError> {
    tx.query_one(
        "SELECT (LEAST($2::BIGINT, COALESCE((SELECT limit_micros FROM keys WHERE id = $1), 0))
               - (SELECT COALESCE(SUM(cost_micros), 0) FROM spend_daily
                  WHERE key_id = $1 AND day >= $3)
               - (SELECT COALESCE(SUM(held_micros), 0) FROM credit_leases
                  WHERE line = $1 AND window_id = $4))::BIGINT",
        &[&id, &limit, &start, &window],
    )
    .and_then(|row| row.try_get(0))
    .map_err(backend)
}

/// Moves the costs of the rows just stored (`stored`: key id and cost of
/// each) from this gateway's leases to the spending: the account's lease
/// by their sum, each key's by its own. Run in the transaction that
/// stored them.
pub(super) fn settle(
    tx: &mut impl GenericClient,
    holder: i64,
    stored: &[(Option<i64>, i64)],
) -> Result<(), StoreError> {
    let mut lines: Vec<i64> = vec![ACCOUNT];
    let mut costs: Vec<i64> = vec![stored.iter().map(|(_, c)| *c).sum()];
    for (key, cost) in stored {
        let Some(key) = key else { continue };
        match lines.iter().position(|l| l == key) {
            Some(i) => costs[i] += cost,
            None => {
                lines.push(*key);
                costs.push(*cost);
            }
        }
    }
    tx.execute(
        "UPDATE credit_leases l SET held_micros = GREATEST(l.held_micros - s.cost, 0)
         FROM UNNEST($2::BIGINT[], $3::BIGINT[]) AS s(line, cost)
         WHERE l.holder = $1 AND l.line = s.line",
        &[&holder, &lines, &costs],
    )
    .map(drop)
    .map_err(backend)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use arouter_core::manage::{KeyPatch, LimitReset};

    use super::super::tests::fresh_database;
    use super::*;
    use crate::store::suite::{new_key, spent, Fixture};
    use crate::store::{Credit, KeyLine, Store};

    fn credit(store: &dyn Store, micros: u64, id: &str) {
        store
            .add_credit(&Credit {
                created_at: 1,
                amount_micros: micros,
                note: None,
                record_id: id.into(),
            })
            .unwrap();
    }

    fn leases(store: &dyn Store) -> &dyn LeaseStore {
        store.leases().unwrap()
    }

    #[test]
    fn gateways_never_lease_the_same_credit_and_settling_moves_a_cost_from_lease_to_usage() {
        let Some(db) = fresh_database() else { return };
        let (a, b) = (db.open(), db.open());
        credit(a.as_ref(), 1_000, "c1");
        assert_eq!(
            leases(a.as_ref()).grant(LeaseLine::Account, 700).unwrap(),
            700
        );
        assert_eq!(
            leases(b.as_ref()).grant(LeaseLine::Account, 700).unwrap(),
            300
        );
        assert_eq!(leases(a.as_ref()).grant(LeaseLine::Account, 1).unwrap(), 0);
        // A call of 200 settled by `a`, stored twice (a replay): its cost
        // leaves a's lease once, so nothing is freed or taken twice.
        let mut call = spent(None, 5, 200);
        call.record_id = Some("r1".into());
        a.record(std::slice::from_ref(&call)).unwrap();
        a.record(std::slice::from_ref(&call)).unwrap();
        assert_eq!(b.totals().unwrap().usage, 200);
        assert_eq!(leases(b.as_ref()).grant(LeaseLine::Account, 1).unwrap(), 0);
        // What `a` gives back is free again; more credit too.
        leases(a.as_ref())
            .give_back(LeaseLine::Account, 500)
            .unwrap();
        credit(b.as_ref(), 50, "c2");
        assert_eq!(
            leases(b.as_ref()).grant(LeaseLine::Account, 1_000).unwrap(),
            550
        );
    }

    #[test]
    fn grants_racing_on_many_gateways_add_up_to_the_balance_exactly() {
        let Some(db) = fresh_database() else { return };
        credit(db.open().as_ref(), 10_007, "c");
        let barrier = Arc::new(Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (store, barrier) = (db.open(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut got = 0;
                    loop {
                        let g = leases(store.as_ref())
                            .grant(LeaseLine::Account, 97)
                            .unwrap();
                        if g == 0 {
                            // Kept open so its lease stays held.
                            return (got, store);
                        }
                        got += g;
                    }
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().map(|(g, _)| g).sum::<u64>(), 10_007);
    }

    #[test]
    fn the_leases_of_a_gateway_that_is_gone_are_free_again() {
        let Some(db) = fresh_database() else { return };
        let b = db.open();
        credit(b.as_ref(), 1_000, "c");
        {
            let a = db.open();
            assert_eq!(
                leases(a.as_ref()).grant(LeaseLine::Account, 900).unwrap(),
                900
            );
        }
        // Its connection ends a moment after it closed it.
        let mut got = 0;
        for _ in 0..250 {
            got = leases(b.as_ref()).grant(LeaseLine::Account, 1_000).unwrap();
            if got > 100 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(got, 1_000);
    }

    #[test]
    fn a_gone_gateways_lease_covers_its_calls_in_flight_until_they_are_billed() {
        let Some(db) = fresh_database() else { return };
        let b = db.open();
        credit(b.as_ref(), 1_000, "c");
        {
            let a = db.open();
            assert_eq!(
                leases(a.as_ref()).grant(LeaseLine::Account, 900).unwrap(),
                900
            );
            a.open_intents(&[crate::store::Intent {
                id: "i1".into(),
                created_at: 1,
                key_id: None,
                request_id: "req-1".into(),
                provider: "openai".into(),
                model: "m".into(),
                reserved_micros: 300,
                prompt_tokens: 10,
                prompt_micros: 40,
                stream: false,
            }])
            .unwrap();
        }
        assert_eq!(
            leases(b.as_ref()).grant(LeaseLine::Account, 1_000).unwrap(),
            100
        );
        // `a` is gone with a call in flight: its lease stays until that
        // call is billed, so nobody spends the credit it may cost.
        let mut recovered = crate::store::Recovered::default();
        for _ in 0..250 {
            assert_eq!(
                leases(b.as_ref()).grant(LeaseLine::Account, 1_000).unwrap(),
                0,
                "a's lease freed before its call was billed"
            );
            recovered = b.recover_intents().unwrap();
            if recovered.calls > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(recovered.micros, 40);
        // Billed: the lease is free, less what the call cost.
        assert_eq!(
            leases(b.as_ref()).grant(LeaseLine::Account, 1_000).unwrap(),
            860
        );
    }

    #[test]
    fn a_key_line_counts_its_window_spending_and_every_gateway_lease_in_it() {
        let Some(db) = fresh_database() else { return };
        let (a, b) = (db.open(), db.open());
        // Grants hold to the keys table's limit too: the two keys exist.
        let limited = |hash: u8, limit: u64| {
            let key = a.insert_key(&new_key([hash; 32])).unwrap();
            let patch = KeyPatch {
                limit_micros: Some(Some(limit)),
                ..KeyPatch::default()
            };
            a.update_key(&[hash; 32], &patch, 0).unwrap();
            key.id
        };
        let (three, four) = (limited(3, 1_000), limited(4, 10));
        let day = 86_400 * 20_000;
        let line = |start: i64, window: u32| {
            LeaseLine::Key(KeyLine {
                id: three,
                limit_micros: 1_000,
                reset: Some(LimitReset::Daily),
                window_start: start,
                window,
            })
        };
        // Spent yesterday does not count today; today's does.
        a.record(&[
            spent(Some(three), day - 10, 900),
            spent(Some(three), day + 5, 100),
        ])
        .unwrap();
        assert_eq!(leases(a.as_ref()).grant(line(day, 1), 600).unwrap(), 600);
        assert_eq!(leases(b.as_ref()).grant(line(day, 1), 600).unwrap(), 300);
        // Another key's line is its own; the account has no credit at all.
        let other = LeaseLine::Key(KeyLine {
            id: four,
            limit_micros: 10,
            reset: None,
            window_start: 0,
            window: 0,
        });
        assert_eq!(leases(b.as_ref()).grant(other, 50).unwrap(), 10);
        assert_eq!(leases(b.as_ref()).grant(LeaseLine::Account, 50).unwrap(), 0);
        // The next day, yesterday's leases no longer hold anything.
        assert_eq!(
            leases(b.as_ref())
                .grant(line(day + 86_400, 2), 5_000)
                .unwrap(),
            1_000
        );
    }
}
