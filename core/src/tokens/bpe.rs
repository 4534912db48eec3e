//! A compact byte-pair encoder for counting tokens with OpenAI's tiktoken
//! tables (o200k_base, cl100k_base).
//!
//! Why not `tiktoken-rs`: its `CoreBPE` keeps every token three times as a
//! separately allocated `Vec<u8>` (encoder map, decoder map, sorted list),
//! about 40 MB for o200k and 20 MB for cl100k, all to answer one question
//! here: how many tokens. This table keeps each token's bytes once, in one
//! buffer, behind an open-addressing index of `u32` ranks: about 4 MB for
//! o200k, built in tens of milliseconds. The merge rule is tiktoken's
//! (lowest rank first, leftmost on a tie), and a test holds the counts
//! equal to `tiktoken-rs` on a varied corpus.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use base64::Engine;
use fancy_regex::Regex;

type Rank = u32;
const EMPTY: u32 = u32::MAX;

/// Every token of one encoding, by rank: its bytes are
/// `bytes[starts[rank]..starts[rank + 1]]`.
struct Ranks {
    bytes: Vec<u8>,
    starts: Vec<u32>,
    /// Open addressing over a power-of-two table at most half full:
    /// each slot holds a rank or `EMPTY`.
    index: Vec<u32>,
}

fn hash(bytes: &[u8]) -> u64 {
    // FNV-1a: short keys, no allocation, good enough spread for a table
    // kept under half full.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Ranks {
    /// Reads a `.tiktoken` file: one `base64(token) rank` per line, ranks
    /// counting up from 0 in line order (true of every OpenAI table).
    fn parse(text: &str) -> Ranks {
        let lines = text.lines().count();
        let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
        let mut starts = Vec::with_capacity(lines + 1);
        starts.push(0);
        for line in text.lines() {
            let token = line.split(' ').next().unwrap_or_default();
            // A line that does not decode keeps its rank with no bytes
            // (never matched), so later ranks stay in place.
            let _ = base64::engine::general_purpose::STANDARD.decode_vec(token, &mut bytes);
            starts.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        }
        bytes.shrink_to_fit();
        let slots = (lines * 2).next_power_of_two();
        let mut ranks = Ranks {
            bytes,
            starts,
            index: vec![EMPTY; slots],
        };
        for rank in 0..lines {
            let token = ranks.token(rank as Rank);
            if token.is_empty() {
                continue;
            }
            let slot = ranks.probe(token);
            ranks.index[slot] = rank as Rank;
        }
        ranks
    }

    fn token(&self, rank: Rank) -> &[u8] {
        let at = rank as usize;
        &self.bytes[self.starts[at] as usize..self.starts[at + 1] as usize]
    }

    /// The slot that holds `bytes`, or the empty slot where it would go.
    fn probe(&self, bytes: &[u8]) -> usize {
        let mask = self.index.len() - 1;
        let mut slot = hash(bytes) as usize & mask;
        loop {
            let rank = self.index[slot];
            if rank == EMPTY || self.token(rank) == bytes {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    fn get(&self, bytes: &[u8]) -> Option<Rank> {
        match self.index[self.probe(bytes)] {
            EMPTY => None,
            rank => Some(rank),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + 4 * (self.starts.capacity() + self.index.capacity())
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
    fn build(table: &str, pattern: &str) -> Encoding {
        Encoding {
            // The patterns are constants checked by the tests.
            pattern: Regex::new(pattern).expect("tokenizer pattern compiles"),
            ranks: Ranks::parse(table),
        }
    }

    /// o200k_base: gpt-4o, gpt-4.1, gpt-5, the o-series.
    pub fn o200k() -> Encoding {
        Encoding::build(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/o200k_base.tiktoken"
            )),
            O200K_PATTERN,
        )
    }

    /// cl100k_base: gpt-3.5 and gpt-4.
    pub fn cl100k() -> Encoding {
        Encoding::build(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/cl100k_base.tiktoken"
            )),
            CL100K_PATTERN,
        )
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

    /// Bytes this table keeps on the heap (not counting the pattern).
    pub fn table_bytes(&self) -> usize {
        self.ranks.heap_bytes()
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
        assert_eq!(ours.ranks.starts.len() - 1, 199_998);
        assert_same(&ours, &tiktoken_rs::o200k_base().expect("o200k"));
    }

    #[test]
    fn cl100k_counts_as_tiktoken_does() {
        let ours = Encoding::cl100k();
        assert_eq!(ours.ranks.starts.len() - 1, 100_256);
        assert_same(&ours, &tiktoken_rs::cl100k_base().expect("cl100k"));
    }

    #[test]
    fn every_token_maps_back_to_its_rank() {
        let ours = Encoding::cl100k();
        for rank in 0..100_256 {
            assert_eq!(ours.ranks.get(ours.ranks.token(rank)), Some(rank));
        }
    }

    #[test]
    fn the_table_is_compact() {
        // The point of this module: a few MB, not tiktoken-rs's ~40.
        let bytes = Encoding::o200k().table_bytes();
        assert!(bytes < 6 << 20, "o200k table takes {bytes} bytes");
    }
}
