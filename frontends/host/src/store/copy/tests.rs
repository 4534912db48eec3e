use super::*;
use crate::store::postgres::tests::fresh_database;
use crate::store::suite::{new_key, spent};

#[test]
fn rows_without_their_parent_are_left_and_a_ledger_is_never_copied_into() {
    let Some(db) = fresh_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(dir.path()).unwrap();
    let key = lite.insert_key(&new_key([7; 32])).unwrap();
    lite.record(&[spent(Some(key.id), 1_000, 42), spent(None, 1_001, 8)])
        .unwrap();
    drop(lite);
    // An item whose response an older build deleted without it: SQLite
    // does not enforce the reference PostgreSQL does.
    rusqlite::Connection::open(dir.path().join(FILE_NAME))
        .unwrap()
        .execute(
            "INSERT INTO response_items (response_seq, item_id, owner, item) VALUES (99, 'i', NULL, '{}')",
            [],
        )
        .unwrap();

    let report = copy(dir.path(), &db.url).unwrap();
    assert!(report.contains("keys: 1\n"), "{report}");
    assert!(report.contains("transactions: 2\n"), "{report}");
    assert!(
        report.contains("response_items: 0 (1 without their parent row, not copied)"),
        "{report}"
    );
    let shared = PostgresStore::open(&db.url).unwrap();
    assert_eq!(shared.load_keys().unwrap(), vec![key.clone()]);
    assert_eq!(shared.totals().unwrap().usage, 50);
    // Ids go on after the copied ones.
    assert_eq!(shared.insert_key(&new_key([8; 32])).unwrap().id, key.id + 1);

    let again = copy(dir.path(), &db.url).unwrap_err();
    assert!(
        matches!(again, CopyError::NotEmpty { table: "keys" }),
        "{again}"
    );
}

#[test]
fn a_missing_file_is_said_so_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let err = copy(dir.path(), "postgres://nowhere.invalid/db").unwrap_err();
    assert!(matches!(err, CopyError::NoSource(_)), "{err}");
}
