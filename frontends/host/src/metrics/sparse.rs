//! Labelled series whose label sets are only known as requests come (the
//! route, status and model of each request): the owning thread finds a
//! series in a map of its own, with no lock; a new label set (rare, and
//! bounded: see `labels`) publishes a fresh list of the thread's series
//! through an `ArcSwap`, which a scrape loads from any thread.

use std::cell::RefCell;
use std::hash::Hash;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arouter_core::name_map::NameMap;

/// A thread's series as a scrape sees them.
pub struct Published<K, V>(ArcSwap<Vec<(K, Arc<V>)>>);

impl<K, V> Default for Published<K, V> {
    fn default() -> Self {
        Published(ArcSwap::from_pointee(Vec::new()))
    }
}

impl<K, V> Published<K, V> {
    pub fn load(&self) -> Arc<Vec<(K, Arc<V>)>> {
        self.0.load_full()
    }
}

/// The owning thread's index of the same series.
pub struct Sparse<K, V> {
    map: RefCell<NameMap<K, Arc<V>>>,
}

impl<K, V> Default for Sparse<K, V> {
    fn default() -> Self {
        Sparse {
            map: RefCell::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> Sparse<K, V> {
    /// Runs `f` on the series of `key`, made (and published) on first use.
    pub fn with(&self, key: K, published: &Published<K, V>, f: impl FnOnce(&V)) {
        let Ok(mut map) = self.map.try_borrow_mut() else {
            // Re-entered from `f`: cannot happen, as `f` only bumps cells.
            return;
        };
        if let Some(series) = map.get(&key) {
            f(series);
            return;
        }
        let series = Arc::new(V::default());
        f(&series);
        map.insert(key, series);
        let list: Vec<(K, Arc<V>)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        published.0.store(Arc::new(list));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn a_new_series_is_published_and_later_updates_are_seen() {
        let published = Published::<u16, AtomicU64>::default();
        let sparse = Sparse::default();
        let bump = |v: &AtomicU64| super::super::cells::bump(v, 1);
        sparse.with(200, &published, bump);
        sparse.with(200, &published, bump);
        sparse.with(404, &published, bump);
        let mut seen: Vec<(u16, u64)> = published
            .load()
            .iter()
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect();
        seen.sort();
        assert_eq!(seen, vec![(200, 2), (404, 1)]);
    }
}
