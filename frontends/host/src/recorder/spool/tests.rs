//! The spool round trip: what is appended reads back as it was, an import
//! stores it once and deletes the file, and a file with a bad line is
//! kept (its good lines stored, never twice).

use super::*;
use crate::store::sqlite::SqliteStore;

/// A row whose columns differ from its neighbours', every optional
/// column set on some rows and unset on others.
fn row(i: u64) -> Transaction {
    let outcomes = [Outcome::Complete, Outcome::Estimated, Outcome::Error];
    Transaction {
        created_at: 1_700_000_000 + i as i64,
        key_id: i.is_multiple_of(2).then_some(i as i64),
        provider: format!("provider-{i}"),
        model: format!("model \"{i}\"\n"),
        prompt_tokens: i,
        completion_tokens: i + 1,
        cost_micros: 1_000 + i,
        complete: !i.is_multiple_of(2),
        estimated: i.is_multiple_of(3),
        referer: i
            .is_multiple_of(2)
            .then(|| format!("https://app-{i}.example")),
        title: (i % 3 == 1).then(|| format!("app {i}")),
        request_id: Some(format!("req-{i}")),
        record_id: Some(format!("rec-{i}")),
        upstream_status: (!i.is_multiple_of(2)).then_some(200 + i as u16),
        outcome: outcomes[i as usize % outcomes.len()],
        generation_id: Some(format!("gen-{i}")),
        cached_tokens: i + 3,
        reasoning_tokens: i + 4,
        stream: i.is_multiple_of(2),
        latency_ms: (!i.is_multiple_of(2)).then_some(i * 10),
        batch: i.is_multiple_of(2).then(|| BatchRef {
            batch_id: format!("msgbatch_{i}"),
            custom_id: format!("custom-{i}"),
        }),
    }
}

fn stored(store: &SqliteStore) -> Vec<Transaction> {
    let mut rows = store.transactions(1_000).unwrap();
    rows.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    rows
}

#[test]
fn appended_rows_read_back_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path(), "inst");
    assert_eq!(spool.path(), dir.path().join("spool/usage-inst.jsonl"));
    let rows: Vec<Transaction> = (0..6).map(row).collect();
    spool.append(&rows[..4], &["intent-a".into()]).unwrap();
    spool.append(&rows[4..], &[]).unwrap();
    let read_back = read(spool.path()).unwrap();
    assert_eq!(read_back.rows, rows);
    assert_eq!(read_back.closes, vec!["intent-a".to_string()]);
    assert!(read_back.bad.is_empty());
}

#[test]
fn an_import_stores_each_row_once_and_deletes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let rows: Vec<Transaction> = (0..5).map(row).collect();
    // Two runs' files, one holding a row the other has too (a replay).
    Spool::new(dir.path(), "a").append(&rows[..3], &[]).unwrap();
    Spool::new(dir.path(), "b").append(&rows[2..], &[]).unwrap();
    let done = import(&store, dir.path()).unwrap();
    assert_eq!((done.files, done.calls, done.kept), (2, 6, 0));
    assert_eq!(stored(&store), rows);
    let cost: u64 = rows.iter().map(|t| t.cost_micros).sum();
    assert_eq!(store.totals().unwrap().usage, cost);
    assert_eq!(fs::read_dir(dir.path().join(DIR)).unwrap().count(), 0);
    // Nothing left: a second start imports nothing.
    assert_eq!(import(&store, dir.path()).unwrap(), Imported::default());
    assert_eq!(store.totals().unwrap().usage, cost);
}

#[test]
fn a_file_with_a_bad_line_is_kept_and_its_good_lines_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let spool = Spool::new(dir.path(), "torn");
    spool.append(&[row(1)], &[]).unwrap();
    let mut text = fs::read_to_string(spool.path()).unwrap();
    text.push_str("{\"transaction\": {\"created_at\": 1\n");
    text.push_str("{\"close\": 7}\n");
    fs::write(spool.path(), &text).unwrap();
    spool.append(&[row(2)], &[]).unwrap();

    let contents = read(spool.path()).unwrap();
    assert_eq!(contents.rows, vec![row(1), row(2)]);
    let lines: Vec<usize> = contents
        .bad
        .iter()
        .map(|e| match e {
            SpoolError::Parse { line, .. } => *line,
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(lines, vec![2, 3]);

    for _ in 0..2 {
        let done = import(&store, dir.path()).unwrap();
        assert_eq!((done.files, done.calls, done.kept), (1, 2, 1));
        assert!(spool.path().exists(), "a file with a bad line was deleted");
        assert_eq!(stored(&store), vec![row(1), row(2)]);
        assert_eq!(
            store.totals().unwrap().usage,
            row(1).cost_micros + row(2).cost_micros
        );
    }
    // An unreadable file (here: not UTF-8) is kept too, and the others go on.
    fs::write(
        dir.path().join(DIR).join("usage-binary.jsonl"),
        [0xff, 0xfe],
    )
    .unwrap();
    let done = import(&store, dir.path()).unwrap();
    assert_eq!((done.files, done.kept), (2, 2));
}
