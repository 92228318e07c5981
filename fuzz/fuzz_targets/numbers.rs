//! Malicious numbers in otherwise valid files: the fuzzer picks which numeric fields of a real
//! manifest and a real plan to replace and with what (biased to the edges: 0, 2^31, 2^32,
//! 2^53, 2^63 - 1, 2^63, 2^64 - 1, negatives). The readers must refuse or accept without a
//! panic, and what they accept must be safe to use: the manifest's totals are computed (no
//! overflow), the plan's graph builds, and both round-trip. (The plan's explanation is
//! computed from the same numbers in `tests/hostile.rs`; it needs the engine build.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use srbackup::plan::Plan;
use srbackup::repo::format::Manifest;

const MANIFEST: &str = include_str!("../../fixtures/manifests/sr_hub_backup.json");
const KEY: &str = "snapshots/sr_hub_backup/2026-11-24-10-25-58-842.json";
const PLAN: &str = include_str!("../../plans/07-backup-sr_hub_backup.json");

const EDGES: [i128; 12] = [
    0,
    1,
    -1,
    1 << 31,
    (1 << 32) - 1,
    1 << 32,
    1 << 53,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
    -(1 << 63),
    1024,
];

/// Every numeric leaf of `v`, in document order.
fn numbers(v: &mut Value, out: &mut Vec<*mut Value>) {
    match v {
        Value::Number(_) => out.push(v as *mut Value),
        Value::Array(a) => a.iter_mut().for_each(|x| numbers(x, out)),
        Value::Object(o) => o.values_mut().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

/// Replaces numbers of `doc` as `data` says: pairs of (which leaf, which value).
fn mutate(doc: &str, data: &[u8]) -> String {
    let mut v: Value = serde_json::from_str(doc).unwrap();
    let mut leaves = Vec::new();
    numbers(&mut v, &mut leaves);
    for pair in data.chunks(3) {
        let [a, b, c] = [pair[0], *pair.get(1).unwrap_or(&0), *pair.get(2).unwrap_or(&0)];
        let leaf = leaves[(usize::from(a) << 8 | usize::from(b)) % leaves.len()];
        let n = EDGES[usize::from(c) % EDGES.len()];
        let value: Value = serde_json::from_str(&n.to_string()).unwrap();
        // SAFETY: the pointers are into `v`, which is alive and not otherwise borrowed; each
        // leaf is replaced by another leaf, so no pointer is invalidated.
        unsafe { *leaf = value };
    }
    serde_json::to_string(&v).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let manifest = mutate(MANIFEST, data);
    if let Ok(m) = Manifest::parse(KEY, manifest.as_bytes()) {
        let _ = m.total_bytes();
        let again = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(KEY, &again).unwrap(), m);
    }
    let plan = mutate(PLAN, data);
    if let Ok(p) = Plan::from_json(&plan) {
        srbackup::plan::graph::TaskGraph::new(&p.tasks).expect("an accepted plan has a valid graph");
        assert_eq!(Plan::from_json(&p.to_json()).unwrap(), p);
    }
});
