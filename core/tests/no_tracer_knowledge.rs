//! The host and the core know no tracer: no setting name any staged plugin
//! declares appears as a string literal in their (non-test) source. A new
//! filter key needs no host edit; this test fails when one creeps back in.

mod common;

use std::path::Path;
use tracer_core::session::Session;

/// The source of `file` up to its test module (tests may name anything).
fn non_test_source(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.file_name().unwrap().to_string_lossy().starts_with("tests") {
            out.push(p);
        }
    }
}

#[test]
fn no_setting_name_of_any_tracer_in_host_or_core() {
    let plugins = common::target().join("debug/plugins");
    assert!(plugins.join("libtracer_open.so").exists(), "{} has no plugins: run `cargo xtask test`", plugins.display());
    let session = Session::load(&plugins).unwrap();
    let mut names: Vec<(String, String)> = Vec::new();
    for slot in &session.slots {
        for s in slot.desc.settings.iter() {
            names.push((slot.name().to_string(), s.name.to_string()));
            names.extend(s.aliases.iter().map(|a| (slot.name().to_string(), a.to_string())));
        }
    }
    assert!(names.len() >= 15, "the four tracers declare their settings: {names:?}");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(&repo.join("core/src"), &mut files);
    rust_files(&repo.join("host/src"), &mut files);
    assert!(files.len() > 20);
    let mut found = Vec::new();
    for f in &files {
        let src = non_test_source(f);
        for (plugin, name) in &names {
            if src.contains(&format!("\"{name}\"")) {
                found.push(format!("{}: \"{name}\" (a setting of {plugin})", f.strip_prefix(repo).unwrap().display()));
            }
        }
    }
    assert!(found.is_empty(), "tracer settings named in host/core:\n{}", found.join("\n"));
}
