//! New key secrets: 32 random bytes from the OS, in hex behind a prefix
//! that says what they are. Only their SHA-256 is stored, with a few
//! leading and trailing characters for the masked label.

use crate::keys::hash_key;
use crate::store::NewKey;

pub const PREFIX: &str = "sk-ar-v1-";
/// Characters of the secret kept for the label: the prefix and three
/// more at the front, three at the end (of 64 random hex digits).
const LABEL_HEAD: usize = PREFIX.len() + 3;
const LABEL_TAIL: usize = 3;

/// A fresh secret; `None` when the OS has no randomness to give.
pub fn generate() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(format!("{PREFIX}{}", crate::store::hex(&bytes)))
}

/// The parts of a secret the store keeps: its hash and label ends.
pub struct Stored {
    pub hash: [u8; 32],
    pub prefix: String,
    pub suffix: String,
}

pub fn stored(secret: &str) -> Stored {
    let head = secret.get(..LABEL_HEAD).unwrap_or("");
    let tail = secret
        .len()
        .checked_sub(LABEL_TAIL)
        .and_then(|at| secret.get(at..))
        .unwrap_or("");
    Stored {
        hash: hash_key(secret),
        prefix: head.to_string(),
        suffix: tail.to_string(),
    }
}

/// Fills a `NewKey`'s secret-derived fields.
pub fn apply(stored: Stored, key: &mut NewKey) {
    key.hash = stored.hash;
    key.prefix = stored.prefix;
    key.suffix = stored.suffix;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_labels_mask_them() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), PREFIX.len() + 64);
        let s = stored(&a);
        assert_eq!(s.prefix.len(), PREFIX.len() + 3);
        assert_eq!(s.suffix.len(), 3);
        assert!(a.starts_with(&s.prefix) && a.ends_with(&s.suffix));
        assert_eq!(s.hash, hash_key(&a));
    }
}
