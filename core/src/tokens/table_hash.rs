//! The hash of the rank tables' open-addressing index, shared by the build
//! script that lays the index out (`core/build.rs`, which includes this
//! file by path) and the lookup that probes it: both must agree bit for
//! bit, so it lives once, with no dependency on the rest of the crate.

/// FNV-1a over the token's bytes: short keys, no allocation, good enough
/// spread for a table kept under half full.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The index slot that marks "no token here".
pub const EMPTY: u32 = u32::MAX;
