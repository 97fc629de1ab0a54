//! Ordered key-value spaces: ordering, ranges in both directions, resumption, caller aborts
//! rolling back, counters, expiry and durability across reopen.

use std::ops::Bound;

use gust_store::{KvAbort, KvCursor, KvRange, KvValue, SqliteStore, StoreOptions};

fn val(v: &str) -> KvValue {
    KvValue {
        value: v.as_bytes().to_vec(),
        weight: v.len() as i64,
        expires_at: None,
    }
}

async fn put(store: &SqliteStore, space: i64, p: &str, s: &str, v: &str) {
    let (p, s, v) = (p.to_string(), s.to_string(), v.to_string());
    store
        .kv_write(move |t| -> Result<(), KvAbort<()>> {
            t.put(space, p.as_bytes(), s.as_bytes(), b"", &val(&v))?;
            Ok(())
        })
        .await
        .expect("store")
        .expect("op");
}

fn values(rows: &[gust_store::KvRow]) -> Vec<String> {
    rows.iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect()
}

#[tokio::test]
async fn ranges_order_resume_and_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open");
    for s in ["b", "a", "ab", "c", "b\u{0}"] {
        put(&store, 1, "p", s, s).await;
    }
    put(&store, 1, "q", "a", "q-a").await;
    put(&store, 2, "p", "a", "other-space").await;

    let all = store
        .kv_read(|t| t.range(&KvRange::partition(1, b"p".to_vec(), 100)))
        .await
        .expect("range");
    assert_eq!(values(&all), ["a", "ab", "b", "b\u{0}", "c"]);

    let mut r = KvRange::partition(1, b"p".to_vec(), 2);
    r.forward = false;
    r.lower = Bound::Excluded(b"a".to_vec());
    r.upper = Bound::Included(b"b\0".to_vec());
    let page = store
        .kv_read({
            let r = r.clone();
            move |t| t.range(&r)
        })
        .await
        .expect("range");
    assert_eq!(values(&page), ["b\u{0}", "b"]);
    let last = page.last().expect("row");
    r.after = Some(KvCursor {
        p: last.p.clone(),
        s: last.s.clone(),
        u: last.u.clone(),
    });
    let page = store.kv_read(move |t| t.range(&r)).await.expect("range");
    assert_eq!(values(&page), ["ab"]);

    let whole = store
        .kv_read(|t| t.range(&KvRange::space(1, 100)))
        .await
        .expect("scan");
    assert_eq!(whole.len(), 6);
    assert_eq!(whole[5].p, b"q");
    let stats = store.kv_read(|t| t.space_stats(1)).await.expect("stats");
    assert_eq!(stats.rows, 6);
}

#[tokio::test]
async fn caller_abort_rolls_back_and_counters_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open");
    let r = store
        .kv_write(|t| -> Result<(), KvAbort<&'static str>> {
            t.put(1, b"p", b"s", b"", &val("v"))?;
            Err(KvAbort::Caller("no"))
        })
        .await
        .expect("store");
    assert_eq!(r, Err("no"));
    let got = store
        .kv_read(|t| t.get(1, b"p", b"s", b""))
        .await
        .expect("get");
    assert_eq!(got, None);

    let ids = store
        .kv_write(|t| -> Result<Vec<i64>, KvAbort<()>> {
            Ok(vec![
                t.next_id("space")?,
                t.next_id("space")?,
                t.next_id("other")?,
            ])
        })
        .await
        .expect("store")
        .expect("op");
    assert_eq!(ids, [1, 2, 1]);
}

#[tokio::test]
async fn expiry_lists_due_rows_and_data_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open");
        store
            .kv_write(|t| -> Result<(), KvAbort<()>> {
                for (k, exp) in [("a", Some(10)), ("b", Some(20)), ("c", None)] {
                    let mut v = val(k);
                    v.expires_at = exp;
                    t.put(7, k.as_bytes(), b"", b"", &v)?;
                }
                Ok(())
            })
            .await
            .expect("store")
            .expect("op");
        let due = store
            .kv_read(|t| t.expired(7, 15, 10))
            .await
            .expect("expired");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].p, b"a");
        store.close();
    }
    let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("reopen");
    let got = store
        .kv_read_now(|t| t.get(7, b"b", b"", b""))
        .expect("get")
        .expect("row");
    assert_eq!(got.expires_at, Some(20));
}
