//! Maps looked up by configured names (providers, models, metric label
//! sets) on every request.
//!
//! std's SipHash was about 4,000 instructions of a non-stream request
//! (`bench/callgrind.sh`: a dozen lookups in the price table and the
//! metrics labels). These maps are filled from configuration (or from a
//! bounded set of label values), never from what a client sends, so they
//! need no defence against chosen collisions beyond foldhash's per-process
//! seed, and its hash of a short name is several times cheaper.

pub type NameMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
