//! The house rules of docs/architecture.md, checked on the source itself:
//! which layer may use which, and no two modules that use each other, so
//! that a change in one never needs the other to move first.
//!
//! Every `crate::…` and `super::…` path in `src/` (use declarations and
//! paths in code alike, test modules aside) is resolved to the module that
//! defines it; a module's use of its own submodules does not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`routes::api::users`) → source text, without comments and
/// test modules.
fn modules() -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    collect(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        "",
        &mut found,
    );
    found
}

fn collect(dir: &Path, prefix: &str, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let join = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}::{name}")
            }
        };
        if path.is_dir() {
            collect(&path, &join(&name), found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match name.as_str() {
                "main" if prefix.is_empty() => continue,
                "lib" if prefix.is_empty() => String::new(),
                "mod" => prefix.to_owned(),
                _ => join(&name),
            };
            found.insert(module, strip(&std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The code without comments, and without the `#[cfg(test)]` modules that
/// close a file.
fn strip(source: &str) -> String {
    let code = source.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a piece of code names from `start` (after `crate::` or
/// `super::`), with `{…}` groups expanded.
fn paths_after(code: &str, start: usize) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut at = start;
    walk(bytes, &mut at, Vec::new(), &mut out);
    out
}

fn ident(bytes: &[u8], at: &mut usize) -> Option<String> {
    let begin = *at;
    while *at < bytes.len() && (bytes[*at].is_ascii_alphanumeric() || bytes[*at] == b'_') {
        *at += 1;
    }
    (*at > begin).then(|| String::from_utf8_lossy(&bytes[begin..*at]).into_owned())
}

fn skip_space(bytes: &[u8], at: &mut usize) {
    while *at < bytes.len() && bytes[*at].is_ascii_whitespace() {
        *at += 1;
    }
}

fn walk(bytes: &[u8], at: &mut usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        skip_space(bytes, at);
        if bytes.get(*at) == Some(&b'{') {
            *at += 1;
            loop {
                skip_space(bytes, at);
                if bytes.get(*at) == Some(&b'}') {
                    *at += 1;
                    return;
                }
                walk(bytes, at, path.clone(), out);
                skip_space(bytes, at);
                match bytes.get(*at) {
                    Some(b',') => *at += 1,
                    Some(b'}') => {
                        *at += 1;
                        return;
                    }
                    _ => return,
                }
            }
        }
        match ident(bytes, at) {
            Some(segment) => path.push(segment),
            None => break,
        }
        if bytes.get(*at..*at + 2) == Some(b"::") {
            *at += 2;
        } else {
            break;
        }
    }
    // `as alias` after a group member.
    skip_space(bytes, at);
    if bytes.get(*at..*at + 3) == Some(b"as ") {
        *at += 3;
        skip_space(bytes, at);
        ident(bytes, at);
    }
    out.push(path);
}

/// The modules `module` uses, resolved against the known ones.
fn uses(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let own: Vec<&str> = if module.is_empty() {
        vec![]
    } else {
        module.split("::").collect()
    };
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            let mut parent = own.clone();
            parent.pop();
            parent
        }),
    ] {
        let mut from = 0;
        while let Some(found) = code[from..].find(anchor) {
            let start = from + found;
            from = start + anchor.len();
            // `self::super::x`, `foo_crate::` and the like are not ours.
            if start > 0 {
                let before = code.as_bytes()[start - 1];
                if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                    continue;
                }
            }
            for tail in paths_after(code, from) {
                let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
                let mut tail = tail.into_iter().peekable();
                // `super::super::…`
                while tail.peek().is_some_and(|s| s == "super") {
                    tail.next();
                    full.pop();
                }
                full.extend(tail.filter(|s| s != "self"));
                // The longest known module that prefixes the path.
                let target = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].join("::"))
                    .find(|candidate| known.contains(candidate));
                if let Some(target) = target {
                    let descendant = module.is_empty()
                        || target == module
                        || target.starts_with(&format!("{module}::"));
                    if !descendant && !target.is_empty() {
                        used.insert(target);
                    }
                }
            }
        }
    }
    used
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, code)| (module.clone(), uses(module, code, &known)))
        .collect()
}

fn within(module: &str, area: &str) -> bool {
    module == area || module.starts_with(&format!("{area}::"))
}

#[test]
fn no_two_modules_use_each_other_even_through_others() {
    let graph = graph();
    // Each strongly connected group of more than one module is a circle.
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        if done.contains(start) {
            continue;
        }
        let reach = |from: &str| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.to_owned()];
            while let Some(next) = stack.pop() {
                for used in graph.get(&next).into_iter().flatten() {
                    if seen.insert(used.clone()) {
                        stack.push(used.clone());
                    }
                }
            }
            seen
        };
        let forward = reach(start);
        let group: BTreeSet<String> = forward
            .iter()
            .filter(|other| *other != start && reach(other).contains(start))
            .cloned()
            .collect();
        if !group.is_empty() {
            done.extend(group.iter().cloned());
            circles.push(format!("{start} ⇄ {group:?}"));
        }
        done.insert(start.clone());
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

/// The layers from the bottom up: a module may use its own layer's
/// modules and those below, never those above.
const LAYERS: &[&[&str]] = &[
    &["domain", "config", "client", "clock", "rfc3339"],
    &["db"],
    &["auth", "audit", "metrics", "mail"],
    &["state"],
    &["service"],
    &["routes", "cli"],
    &["router", "middleware", "background", "startup"],
];

/// Faces that must not use each other's modules.
const FACES: &[&str] = &["routes::api", "routes::admin", "cli"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|layer| layer.iter().any(|area| within(module, area)))
}

fn face_of(module: &str) -> Option<&'static str> {
    FACES.iter().copied().find(|face| within(module, face))
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let mut broken = Vec::new();
    // The crate root (lib.rs) only lists the modules.
    for (module, used) in graph().iter().filter(|(module, _)| !module.is_empty()) {
        let Some(layer) = layer_of(module) else {
            broken.push(format!("{module} is in no layer"));
            continue;
        };
        for target in used {
            let above = layer_of(target).is_some_and(|theirs| theirs > layer);
            let other_face = match (face_of(module), face_of(target)) {
                (Some(mine), Some(theirs)) => mine != theirs,
                _ => false,
            };
            if above || other_face {
                broken.push(format!("{module} uses {target}"));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken: {broken:#?}");
}

#[test]
fn a_face_error_type_appears_only_in_the_faces() {
    let mut leaks = Vec::new();
    for (module, code) in modules() {
        let face = within(&module, "routes") || module == "router" || module == "middleware";
        for error in ["ApiError", "PageError"] {
            if !face && code.contains(error) {
                leaks.push(format!("{module} names {error}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[test]
fn the_checker_sees_a_circle_and_a_group_import() {
    let known: BTreeSet<String> = ["a", "b", "b::c", "d"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let used = uses(
        "a",
        "use crate::b::{self, c::Thing, x as y};\nfn f() { crate::d::g(); }",
        &known,
    );
    assert_eq!(
        used,
        ["b", "b::c", "d"].iter().map(|s| s.to_string()).collect()
    );
    let child = uses("b::c", "use super::Item;", &known);
    assert_eq!(child, ["b".to_owned()].into_iter().collect());
    assert!(uses("b", "use self::c::X; use c::Y;", &known).is_empty());
}
