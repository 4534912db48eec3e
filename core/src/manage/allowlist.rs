//! A key's model allowlist: glob patterns over `provider/model`
//! (`openai/*`, `anthropic/claude-sonnet-4-5`). Only `*` is special: it
//! matches any run of characters, `/` included.

/// The patterns a key may call; an empty list allows nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelAllowlist {
    patterns: Vec<String>,
}

/// Why a pattern list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowlistError {
    TooMany,
    BadPattern,
}

/// Bounds that keep a key record (and its check per request) small.
pub const MAX_PATTERNS: usize = 64;
const MAX_PATTERN_LEN: usize = 256;

impl ModelAllowlist {
    pub fn new(patterns: Vec<String>) -> Result<ModelAllowlist, AllowlistError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(AllowlistError::TooMany);
        }
        let valid = |p: &String| {
            !p.is_empty() && p.len() <= MAX_PATTERN_LEN && p.bytes().all(|b| b.is_ascii_graphic())
        };
        if !patterns.iter().all(valid) {
            return Err(AllowlistError::BadPattern);
        }
        Ok(ModelAllowlist { patterns })
    }

    /// The list that allows no model.
    pub fn nothing() -> ModelAllowlist {
        ModelAllowlist {
            patterns: Vec::new(),
        }
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `provider/model` is allowed, without building that string.
    pub fn allows(&self, provider: &str, model: &str) -> bool {
        let name = Joined {
            head: provider.as_bytes(),
            tail: model.as_bytes(),
        };
        self.patterns
            .iter()
            .any(|p| glob_match(p.as_bytes(), &name))
    }
}

/// `head/tail`, read byte by byte.
struct Joined<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl Joined<'_> {
    fn len(&self) -> usize {
        self.head.len() + 1 + self.tail.len()
    }

    fn at(&self, i: usize) -> u8 {
        match i.cmp(&self.head.len()) {
            std::cmp::Ordering::Less => self.head[i],
            std::cmp::Ordering::Equal => b'/',
            std::cmp::Ordering::Greater => self.tail[i - self.head.len() - 1],
        }
    }
}

/// Iterative glob with one backtrack point (the last `*`): linear in
/// practice, quadratic at worst, never exponential.
fn glob_match(pattern: &[u8], name: &Joined<'_>) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name.at(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> ModelAllowlist {
        ModelAllowlist::new(patterns.iter().map(|p| p.to_string()).collect()).unwrap()
    }

    #[test]
    fn globs_over_provider_and_model() {
        let l = list(&["openai/*", "anthropic/claude-sonnet-4-5"]);
        assert!(l.allows("openai", "gpt-4o-mini"));
        assert!(l.allows("openai", "ft:gpt-4o:org/x"));
        assert!(l.allows("anthropic", "claude-sonnet-4-5"));
        assert!(!l.allows("anthropic", "claude-sonnet-4-5-extra"));
        assert!(!l.allows("anthropic", "claude-opus-4"));
        assert!(!l.allows("openaix", "gpt-4o"));
        assert!(!l.allows("gemini", "openai/gpt-4o"));
        let mid = list(&["*/gpt-*-mini", "*"]);
        assert!(mid.allows("x", "y"));
        let mid = list(&["*/gpt-*-mini"]);
        assert!(mid.allows("openai", "gpt-4o-mini"));
        assert!(mid.allows("azure", "gpt-4.1-mini"));
        assert!(!mid.allows("openai", "gpt-4o"));
        assert!(!list(&[]).allows("openai", "gpt-4o"));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert_eq!(
            ModelAllowlist::new(vec![String::new()]),
            Err(AllowlistError::BadPattern)
        );
        assert_eq!(
            ModelAllowlist::new(vec!["a b".into()]),
            Err(AllowlistError::BadPattern)
        );
        assert_eq!(
            ModelAllowlist::new(vec!["a".into(); MAX_PATTERNS + 1]),
            Err(AllowlistError::TooMany)
        );
    }

    #[test]
    fn many_stars_stay_fast() {
        let l = list(&["*a*a*a*a*a*a*a*a*a*a*b"]);
        let long = "a".repeat(200);
        assert!(!l.allows("a", &long));
    }
}
