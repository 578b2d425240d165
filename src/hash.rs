//! Hash maps and sets for the per-batch hot path, keyed by event data (sales keys, ip and
//! product keys, dimension keys): foldhash, seeded at random per process, several times
//! faster than std's SipHash on the 64-character keys each batch hashes thousands of
//! times. Promises nothing about iteration order: whoever needs a fixed order sorts.

/// The per-process random state.
pub(crate) type State = foldhash::fast::RandomState;

pub(crate) type Map<K, V> = std::collections::HashMap<K, V, State>;
pub(crate) type Set<K> = std::collections::HashSet<K, State>;
