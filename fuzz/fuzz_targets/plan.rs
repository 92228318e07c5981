//! The plan file reader on arbitrary text: it never panics, and a plan it accepts has a
//! task graph without cycles and round-trips through its own serialization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srbackup::plan::Plan;
use srbackup::plan::graph::TaskGraph;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plan) = Plan::from_json(text) {
        let graph = TaskGraph::new(&plan.tasks).expect("an accepted plan has a valid graph");
        let _ = graph.dot();
        assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    }
});
