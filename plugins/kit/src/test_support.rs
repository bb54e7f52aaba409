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
