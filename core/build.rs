//! Lays out the tokenizer tables at compile time, so a running gateway
//! never builds them: each `.tiktoken` asset (one `base64(token) rank` per
//! line, ranks counting up from 0 in line order) becomes three blobs in
//! `OUT_DIR`, which `src/tokens/bpe.rs` includes with `include_bytes!` and
//! reads in place from the binary's read-only pages:
//! - `NAME.bytes`: every token's bytes, concatenated in rank order;
//! - `NAME.starts`: `u32` offsets into `bytes`, one per rank plus the end,
//!   so rank `r` is `bytes[starts[r]..starts[r + 1]]`;
//! - `NAME.index`: an open-addressing table of `u32` ranks (or `EMPTY`),
//!   a power of two at most half full, probed linearly from
//!   `table_hash::hash(token)`.
//!
//! Every `u32` is written little-endian whatever the target, and read back
//! with `u32::from_le_bytes`, so the blobs mean the same on any target.

#[path = "src/tokens/table_hash.rs"]
mod table_hash;

use std::path::{Path, PathBuf};

use base64::Engine;

const TABLES: [&str; 2] = ["o200k_base", "cl100k_base"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/tokens/table_hash.rs");
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in TABLES {
        let asset = manifest.join("assets").join(format!("{name}.tiktoken"));
        println!("cargo:rerun-if-changed={}", asset.display());
        let text = std::fs::read_to_string(&asset)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", asset.display()));
        let table = Table::parse(&text);
        table.write(&out, name);
    }
}

struct Table {
    bytes: Vec<u8>,
    starts: Vec<u32>,
    index: Vec<u32>,
}

impl Table {
    fn parse(text: &str) -> Table {
        let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
        let mut starts = vec![0u32];
        for (line_no, line) in text.lines().enumerate() {
            let (token, rank) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("line {}: no rank", line_no + 1));
            // Ranks are line numbers in every OpenAI table; the layout
            // relies on it, so a table that breaks it fails the build.
            assert_eq!(
                rank.trim().parse::<usize>().ok(),
                Some(line_no),
                "line {}: rank out of order",
                line_no + 1
            );
            base64::engine::general_purpose::STANDARD
                .decode_vec(token, &mut bytes)
                .unwrap_or_else(|e| panic!("line {}: {e}", line_no + 1));
            starts.push(u32::try_from(bytes.len()).expect("table under 4 GiB"));
        }
        let ranks = starts.len() - 1;
        let mut table = Table {
            bytes,
            starts,
            index: vec![table_hash::EMPTY; (ranks * 2).next_power_of_two()],
        };
        for rank in 0..ranks {
            let token = table.token(rank);
            let mask = table.index.len() - 1;
            let mut slot = table_hash::hash(token) as usize & mask;
            while table.index[slot] != table_hash::EMPTY {
                assert_ne!(
                    table.token(table.index[slot] as usize),
                    token,
                    "token of rank {rank} is listed twice"
                );
                slot = (slot + 1) & mask;
            }
            table.index[slot] = u32::try_from(rank).expect("ranks fit u32");
        }
        table
    }

    fn token(&self, rank: usize) -> &[u8] {
        &self.bytes[self.starts[rank] as usize..self.starts[rank + 1] as usize]
    }

    fn write(&self, out: &Path, name: &str) {
        let words = |words: &[u32]| {
            words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        for (ext, blob) in [
            ("bytes", self.bytes.clone()),
            ("starts", words(&self.starts)),
            ("index", words(&self.index)),
        ] {
            let path = out.join(format!("{name}.{ext}"));
            std::fs::write(&path, blob)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }
}
