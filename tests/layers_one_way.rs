//! The layering rule of DESIGN.md, checked on the source text: modules
//! import one way, `bus` ← `model` ← `gateway` ← `shard` ← `session`
//! (`http` and `state` beside `gateway`), and no arrow runs back up.
//!
//! Each layer's files are scanned for paths that name a layer above it from
//! the crate root: `crate::gateway`, `$crate::gateway`, `crate::{gateway,
//! ..}`, and `super::..::gateway` when the `super`s climb to the root.
//! Comments are skipped: a doc link is not an import.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

/// The layers above `model` that `bus` and `model` must not name.
const ABOVE_MODEL: &[&str] = &["gateway", "http", "state", "shard", "session", "bridge"];

#[test]
fn model_imports_nothing_from_the_layers_above_it() {
    assert_layer_is_below("model", ABOVE_MODEL);
}

#[test]
fn bus_imports_nothing_from_the_layers_above_it() {
    let mut above = vec!["model"];
    above.extend_from_slice(ABOVE_MODEL);
    assert_layer_is_below("bus", &above);
}

#[test]
fn gateway_imports_nothing_from_the_layers_above_it() {
    assert_layer_is_below("gateway", &["shard", "session", "bridge"]);
}

#[test]
fn state_imports_nothing_from_the_layers_above_it() {
    assert_layer_is_below("state", &["gateway", "http", "shard", "session", "bridge"]);
}

#[test]
fn the_scanner_finds_every_form_of_an_upward_path() {
    let found = |text: &str, depth| upward_paths(text, depth, ABOVE_MODEL);
    assert_eq!(found("use crate::gateway::Event;", 2), ["crate::gateway"]);
    assert_eq!(found("impl $crate::shard::X for Y {}", 2), ["crate::shard"]);
    assert_eq!(
        found("use crate::{bus::TypeMux, session::Session};", 2),
        ["crate::session"]
    );
    assert_eq!(
        found("use crate::{\n    gateway::{Event, OpCode},\n};", 2),
        ["crate::gateway"]
    );
    assert_eq!(
        found("use super::super::gateway::Event;", 2),
        ["crate::gateway"]
    );
    assert_eq!(found("use super::gateway::Event;", 1), ["crate::gateway"]);
    // A `super` that stays inside the layer, a same-named item deeper down,
    // a longer name and a comment are not upward paths.
    assert!(found("use super::gateway::Event;", 2).is_empty());
    assert!(found("use crate::model::gateway::X;", 2).is_empty());
    assert!(found("use crate::gateways::X;", 2).is_empty());
    assert!(found("/// See [`Event`](crate::gateway::Event).", 2).is_empty());
    assert!(found("let x = 1; // crate::gateway", 2).is_empty());
}

/// Fails with every upward path in `src/<layer>/**/*.rs`.
fn assert_layer_is_below(layer: &str, above: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join(layer), &mut files);
    assert!(!files.is_empty(), "no sources found under src/{layer}");

    let mut violations = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let depth = module_depth(&src, file);
        for path in upward_paths(&text, depth, above) {
            let shown = file.strip_prefix(&src).unwrap().display();
            violations.push(format!("src/{shown}: {path}"));
        }
    }
    assert!(
        violations.is_empty(),
        "`{layer}` must not import from a layer above it (DESIGN.md, \"Data flows \
         one way\"); move the code down or the item up:\n  {}",
        violations.join("\n  ")
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// How many `super`s climb from `file`'s module to the crate root:
/// `src/model/mod.rs` is `model` (1), `src/model/ready.rs` is `model::ready`
/// (2).
fn module_depth(src: &Path, file: &Path) -> usize {
    let parts = file.strip_prefix(src).unwrap().components().count();
    if file.file_name().is_some_and(|name| name == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// The paths in `text` (comments removed) that start at the crate root and
/// name one of `above`, as `crate::<layer>`.
fn upward_paths(text: &str, depth: usize, above: &[&str]) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|line| line.find("//").map_or(line, |i| &line[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let supers = "super::".repeat(depth);
    let roots = ["crate::", supers.as_str()];

    let mut found = Vec::new();
    for root in roots {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(root) {
            let preceded_by_ident = rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[i + root.len()..];
            if preceded_by_ident {
                continue;
            }
            for name in first_segments(rest) {
                if above.contains(&name) {
                    found.push(format!("crate::{name}"));
                }
            }
        }
    }
    found
}

/// The first path segment after a root: `gateway` in `gateway::Event`, or
/// `bus` and `gateway` in `{bus::TypeMux, gateway::{Event, OpCode}}`.
fn first_segments(rest: &str) -> Vec<&str> {
    let rest = rest.trim_start();
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            _ if c.is_whitespace() => {}
            _ if start && depth == 0 => {
                names.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    names
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}
