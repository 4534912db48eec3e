//! A compact byte-pair encoder for counting tokens with OpenAI's tiktoken
//! tables (o200k_base, cl100k_base).
//!
//! Why not `tiktoken-rs`: its `CoreBPE` keeps every token three times as a
//! separately allocated `Vec<u8>` (encoder map, decoder map, sorted list),
//! about 40 MB for o200k and 20 MB for cl100k, all to answer one question
//! here: how many tokens. This table keeps each token's bytes once, in one
//! buffer, behind an open-addressing index of `u32` ranks (4.3 MB for
//! o200k, 2.1 MB for cl100k), and it is not built at run time at all:
//! `core/build.rs` lays it out from the `.tiktoken` assets when the crate
//! is compiled, and the binary carries it as read-only data. A lookup reads
//! those pages in place: no start-up or first-use build, no heap, pages
//! shared between processes and paged in by the kernel as they are touched
//! (a short count touches a few dozen of them). The merge rule is
//! tiktoken's (lowest rank first, leftmost on a tie), and a test holds the
//! counts equal to `tiktoken-rs` on a varied corpus.
//!
//! Byte order: the build script writes every `u32` little-endian and
//! [`Words`] reads it with `u32::from_le_bytes`, so the tables mean the
//! same on any target (a plain aligned load on little-endian ones). No
//! `unsafe` reinterpretation is needed; the blobs are 4-aligned all the
//! same, so each read is one aligned load.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fancy_regex::Regex;

use super::table_hash::{hash, EMPTY};

type Rank = u32;

/// A blob from `include_bytes!`, placed on a 4-byte boundary.
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

/// The three blobs of one table as `core/build.rs` wrote them to `OUT_DIR`.
macro_rules! table {
    ($name:literal) => {
        Ranks {
            bytes: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".bytes")),
            starts: Words({
                static STARTS: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
                    env!("OUT_DIR"),
                    "/",
                    $name,
                    ".starts"
                )));
                &STARTS.0
            }),
            index: Words({
                static INDEX: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
                    env!("OUT_DIR"),
                    "/",
                    $name,
                    ".index"
                )));
                &INDEX.0
            }),
        }
    };
}

/// Little-endian `u32`s stored as bytes.
#[derive(Clone, Copy)]
struct Words(&'static [u8]);

impl Words {
    fn len(self) -> usize {
        self.0.len() / 4
    }

    fn get(self, i: usize) -> u32 {
        let at = i * 4;
        let mut word = [0; 4];
        word.copy_from_slice(&self.0[at..at + 4]);
        u32::from_le_bytes(word)
    }
}

/// Every token of one encoding, by rank: its bytes are
/// `bytes[starts[rank]..starts[rank + 1]]`.
#[derive(Clone, Copy)]
struct Ranks {
    bytes: &'static [u8],
    starts: Words,
    /// Open addressing over a power-of-two table at most half full:
    /// each slot holds a rank or `EMPTY`.
    index: Words,
}

impl Ranks {
    fn o200k() -> Ranks {
        table!("o200k_base")
    }

    fn cl100k() -> Ranks {
        table!("cl100k_base")
    }

    /// How many tokens the table has.
    #[cfg(test)]
    fn len(self) -> usize {
        self.starts.len() - 1
    }

    fn token(&self, rank: Rank) -> &'static [u8] {
        let at = rank as usize;
        &self.bytes[self.starts.get(at) as usize..self.starts.get(at + 1) as usize]
    }

    fn get(&self, bytes: &[u8]) -> Option<Rank> {
        let mask = self.index.len() - 1;
        let mut slot = hash(bytes) as usize & mask;
        loop {
            match self.index.get(slot) {
                EMPTY => return None,
                rank if self.token(rank) == bytes => return Some(rank),
                _ => slot = (slot + 1) & mask,
            }
        }
    }
}

/// One tokenizer: the pre-tokenizing pattern and the ranks.
pub struct Encoding {
    pattern: Regex,
    ranks: Ranks,
}

/// The o200k pre-tokenizer (gpt-4o and later), as OpenAI publishes it.
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);

/// The cl100k pre-tokenizer (gpt-3.5, gpt-4).
const CL100K_PATTERN: &str = concat!(
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+",
    r"| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s",
);

impl Encoding {
    fn new(ranks: Ranks, pattern: &str) -> Encoding {
        Encoding {
            // The patterns are constants checked by the tests.
            pattern: Regex::new(pattern).expect("tokenizer pattern compiles"),
            ranks,
        }
    }

    /// o200k_base: gpt-4o, gpt-4.1, gpt-5, the o-series.
    pub fn o200k() -> Encoding {
        Encoding::new(Ranks::o200k(), O200K_PATTERN)
    }

    /// cl100k_base: gpt-3.5 and gpt-4.
    pub fn cl100k() -> Encoding {
        Encoding::new(Ranks::cl100k(), CL100K_PATTERN)
    }

    /// Tokens in `text`, special tokens counted as ordinary text (as
    /// tiktoken's `encode_ordinary` does).
    pub fn count(&self, text: &str) -> u64 {
        let mut total = 0;
        for piece in self.pattern.find_iter(text) {
            // The only error is the backtracking limit, which these
            // patterns (one single-character look-ahead) cannot reach on
            // the bounded pieces the caller passes; a piece that did is
            // left uncounted rather than failing the request.
            let Ok(piece) = piece else { break };
            let piece = piece.as_str().as_bytes();
            total += match self.ranks.get(piece) {
                Some(_) => 1,
                None => merged_len(&self.ranks, piece),
            } as u64;
        }
        total
    }
}

/// How many tokens byte-pair merging leaves of `piece`: repeatedly merge
/// the adjacent pair whose bytes have the lowest rank (leftmost first).
/// A heap of candidate pairs keeps long pieces O(n log n).
fn merged_len(ranks: &Ranks, piece: &[u8]) -> usize {
    let n = piece.len();
    if n < 2 {
        return n;
    }
    // The tokens still standing start at positions where `end[i] != 0`;
    // the token at `i` covers `i..end[i]`, its left neighbour starts at
    // `prev[i]` (`usize::MAX` for the first).
    let mut end: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    // The end of the pair that starts at `i`, if `i` has a right neighbour.
    let pair_end = |end: &[usize], i: usize| (end[i] < n).then(|| end[end[i]]);
    let mut heap = BinaryHeap::with_capacity(n);
    for i in 0..n - 1 {
        if let Some(rank) = ranks.get(&piece[i..i + 2]) {
            heap.push(Reverse((rank, i, i + 2)));
        }
    }
    let mut tokens = n;
    while let Some(Reverse((_, start, stop))) = heap.pop() {
        // A pair recorded before one of its halves changed is stale.
        if end[start] == 0 || pair_end(&end, start) != Some(stop) {
            continue;
        }
        let middle = end[start];
        end[middle] = 0;
        end[start] = stop;
        if stop < n {
            prev[stop] = start;
        }
        tokens -= 1;
        if let Some(next_stop) = pair_end(&end, start) {
            if let Some(rank) = ranks.get(&piece[start..next_stop]) {
                heap.push(Reverse((rank, start, next_stop)));
            }
        }
        let left = prev[start];
        if left != usize::MAX {
            if let Some(rank) = ranks.get(&piece[left..stop]) {
                heap.push(Reverse((rank, left, stop)));
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text that exercises every branch of both patterns: contractions,
    /// case runs, digits, punctuation runs, newlines, trailing spaces,
    /// non-Latin scripts, emoji, and long unbroken runs (heap merging).
    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "Hello, world!",
            "You are a helpful assistant.",
            "I'm sure they'll say we've done it; it's THEIR call, isn't it? HE'S here.",
            "def f(x):\n    return x ** 2  # square\n\n\n\tindented\r\n  trailing   ",
            "1234567890 3.14159 1,000,000 0x1F 2026-12-01T00:59:13Z",
            "Ünïcödé façade naïve — “quotes” … 日本語のテキスト、中文文本。한국어 텍스트",
            "Привет, мир! مرحبا بالعالم שלום עולם नमस्ते दुनिया",
            "emoji 🙂👍🏽👨‍👩‍👧‍👦 and symbols ∑∫√∞ ≠ ≤ ≥ ©®™",
            "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
            "<|endoftext|> special markers count as text <|im_start|>",
            "   leading spaces and    inner   runs   ",
            "CamelCaseIdentifiers and snake_case_names and SCREAMING_CASE",
            "https://example.com/path/to/page?query=1&x=y#frag",
            "",
            " ",
            "\n\n\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("_".repeat(3000));
        texts.push("ab".repeat(1500));
        texts.push("🙂".repeat(700));
        texts.push("The quick brown fox jumps over the lazy dog. ".repeat(200));
        // Bytes of every value, as text.
        texts.push((1u32..0x800).filter_map(char::from_u32).collect());
        texts
    }

    fn assert_same(ours: &Encoding, theirs: &tiktoken_rs::CoreBPE) {
        for text in corpus() {
            assert_eq!(
                ours.count(&text),
                theirs.encode_ordinary(&text).len() as u64,
                "count differs for {:?}",
                text.chars().take(60).collect::<String>()
            );
        }
    }

    #[test]
    fn o200k_counts_as_tiktoken_does() {
        let ours = Encoding::o200k();
        assert_eq!(ours.ranks.len(), 199_998);
        assert_same(&ours, &tiktoken_rs::o200k_base().expect("o200k"));
    }

    #[test]
    fn cl100k_counts_as_tiktoken_does() {
        let ours = Encoding::cl100k();
        assert_eq!(ours.ranks.len(), 100_256);
        assert_same(&ours, &tiktoken_rs::cl100k_base().expect("cl100k"));
    }

    #[test]
    fn every_token_maps_back_to_its_rank() {
        // The build script's index, probed by the lookup: they agree on
        // the hash and the layout for every token of both tables.
        for ranks in [Ranks::o200k(), Ranks::cl100k()] {
            for rank in 0..ranks.len() as Rank {
                assert_eq!(ranks.get(ranks.token(rank)), Some(rank));
            }
        }
    }

    #[test]
    fn the_tables_are_static_compact_and_aligned() {
        // Nothing is built: every call hands out the same read-only blobs.
        assert_eq!(Ranks::o200k().bytes.as_ptr(), Ranks::o200k().bytes.as_ptr());
        for ranks in [Ranks::o200k(), Ranks::cl100k()] {
            // A few MB, not tiktoken-rs's ~40.
            let size = ranks.bytes.len() + ranks.starts.0.len() + ranks.index.0.len();
            assert!(size < 5 << 20, "table takes {size} bytes");
            assert!(ranks.index.len().is_power_of_two());
            assert!(
                ranks.index.len() >= 2 * ranks.len(),
                "index more than half full"
            );
            for words in [ranks.starts, ranks.index] {
                assert_eq!(words.0.as_ptr() as usize % 4, 0, "blob not 4-aligned");
            }
        }
    }
}
