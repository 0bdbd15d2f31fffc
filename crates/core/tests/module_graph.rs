//! Core's modules import each other without circles (issue 18: `profile`, `tunnel` and `ssh`
//! imported each other, so none could be read or tested alone). A module is a file or folder
//! under `src/`; it depends on another when its code (not its comments or unit tests) names
//! `crate::<other>`. The test fails naming the circle and the file that makes each step.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() || p.extension().is_some_and(|e| e == "rs") {
            files.extend(rust_files(&p));
        }
    }
    files
}

/// The top-level modules a source file refers to through `crate::`.
fn references(source: &str) -> BTreeSet<String> {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(i) => &source[..i],
        None => source,
    };
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::x, b, c::{y, z}};`: the names at the outer level.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.insert(ident(item.trim()));
        } else {
            found.insert(ident(rest));
        }
    }
    found.remove("");
    found
}

#[test]
fn core_modules_import_each_other_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name != "lib" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            modules.insert(name, path);
        }
    }
    // module -> (dependency -> the file that names it)
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, path) in &modules {
        let deps = edges.entry(name.clone()).or_default();
        for file in rust_files(path) {
            let source = std::fs::read_to_string(&file).unwrap();
            for dep in references(&source) {
                if &dep != name && modules.contains_key(&dep) {
                    let shown = file.strip_prefix(&src).unwrap().display().to_string();
                    deps.entry(dep).or_insert(shown);
                }
            }
        }
    }
    // Depth-first search; a module met again on the current path closes a circle.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut circle = path[i..].to_vec();
            circle.push(m.to_string());
            return Some(circle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for dep in edges[m].keys() {
            if let Some(c) = visit(dep, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(circle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            let steps: Vec<String> = circle
                .windows(2)
                .map(|w| format!("{} -> {} (in {})", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            panic!(
                "core's modules import each other in a circle:\n  {}",
                steps.join("\n  ")
            );
        }
    }
}

#[test]
fn references_reads_use_groups_and_paths_but_not_comments() {
    let source = "use crate::{a::X, b, c::{d, e}};\n// crate::f\nfn g() { crate::h::i(); }\n";
    let found: Vec<String> = references(source).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "h"]);
}
