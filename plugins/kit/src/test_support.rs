//! For plugins' property tests: arbitrary map snapshots, as a faulty or
//! hostile map could hand them over (short keys, odd value sizes, any CPU count).

use abi_stable::std_types::RVec;
use proptest::prelude::*;
use tracer_plugin_api::{MapEntry, MapSnapshot};

/// A snapshot named one of `names`, with 0-5 entries of arbitrary bytes.
pub fn snapshot(names: &'static [&'static str]) -> impl Strategy<Value = MapSnapshot> {
    (
        prop::sample::select(names),
        0u32..5,
        proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..700)),
            0..6,
        ),
    )
        .prop_map(|(name, per_key, entries)| MapSnapshot {
            name: name.into(),
            values_per_key: per_key,
            entries: RVec::from(
                entries.into_iter().map(|(k, v)| MapEntry { key: k.into(), value: v.into() }).collect::<Vec<_>>(),
            ),
        })
}

/// Every generated struct's size and field offsets (as the Rust compiler laid
/// them out) equal the BTF of `bpf_object`, the object the plugin embeds: a
/// header, generator or compiler that drifts fails the plugin's tests.
pub fn assert_layouts_match(bpf_object: &[u8], layouts: &[crate::Layout]) {
    use libbpf_rs::btf::types::{Composite, MemberAttr};
    use libbpf_rs::btf::Btf;
    use libbpf_rs::HasSize;

    let btf = Btf::from_raw("plugin", bpf_object).expect("BTF of the BPF object").expect("the BPF object has BTF");
    assert!(!layouts.is_empty(), "no generated struct to check");
    for l in layouts {
        let s: Composite = btf.type_by_name(l.name).unwrap_or_else(|| panic!("struct {} is not in the object's BTF", l.name));
        assert_eq!(s.size(), l.size, "struct {}: size in BTF vs Rust", l.name);
        for (field, off) in &l.fields {
            let field = field.trim_start_matches("r#");
            let m = s
                .iter()
                .find(|m| m.name.is_some_and(|n| n == field))
                .unwrap_or_else(|| panic!("{}.{field} is not in the object's BTF", l.name));
            let bits = match m.attr {
                MemberAttr::Normal { offset } => offset,
                MemberAttr::BitField { offset, .. } => offset,
            };
            assert_eq!(bits as usize, off * 8, "{}.{field}: offset in BTF (bits) vs Rust (bytes x 8)", l.name);
        }
    }
}

/// The declared settings and the settings the plugin parses are the same keys:
/// every declared key is accepted as a key (its value may still be refused),
/// and an unknown key is refused with exactly the declared keys as the
/// expected ones (serde's `deny_unknown_fields` message lists them).
pub fn assert_settings_declared(specs: &[tracer_plugin_api::SettingSpec], parse: impl Fn(&str) -> Result<(), String>) {
    let declared: std::collections::BTreeSet<String> = specs.iter().map(|s| s.name.to_string()).collect();
    for s in specs {
        let json = format!("{{{:?}: null}}", s.name.as_str());
        if let Err(e) = parse(&json) {
            assert!(!e.contains("unknown field"), "declared setting {} is not a setting the plugin parses: {e}", s.name);
        }
    }
    let e = parse(r#"{"__no_such_setting": 1}"#).expect_err("an unknown key is refused");
    let expected = e.split("expected one of ").nth(1).or_else(|| e.split("expected ").nth(1)).unwrap_or("");
    let parsed: std::collections::BTreeSet<String> = expected.split(", ").map(|k| k.trim().trim_matches('`').to_string()).filter(|k| !k.is_empty()).collect();
    assert_eq!(parsed, declared, "keys the plugin parses ({e}) vs keys it declares");
}

/// Every sample is of a declared metric, with as many labels as it declares
/// and the shape of its kind; names follow the exporters' conventions
/// (counters end in `_total`, a unit other than `1` is the name's suffix).
pub fn assert_metrics_declared(specs: &[tracer_plugin_api::MetricSpec], samples: &[tracer_plugin_api::MetricSample]) {
    use tracer_plugin_api::MetricKind;
    for s in specs {
        let name = s.name.as_str();
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "metric {name}: lower snake case");
        let base = name.strip_suffix("_total").unwrap_or(name);
        assert_eq!(s.kind == MetricKind::COUNTER, name.ends_with("_total"), "metric {name}: counters, and only counters, end in _total");
        if s.unit.as_str() != "1" {
            assert!(base.ends_with(&format!("_{}", s.unit)), "metric {name}: unit {} is the name's suffix", s.unit);
        }
        assert!(!s.help.is_empty(), "metric {name} has help");
    }
    for x in samples {
        let spec = specs.iter().find(|s| s.name == x.name).unwrap_or_else(|| panic!("sample {} is of no declared metric", x.name));
        assert_eq!(x.labels.len(), spec.labels.len(), "sample {}: label values vs declared labels {:?}", x.name, spec.labels);
        assert!(spec.kind == MetricKind::LOG2_HISTOGRAM || x.buckets.is_empty(), "sample {}: buckets only on histograms", x.name);
        if spec.kind != MetricKind::LOG2_HISTOGRAM {
            assert!(x.value.is_finite() && x.value >= 0.0, "sample {}: value {}", x.name, x.value);
        }
    }
}
