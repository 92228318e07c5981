//! The snapshot manifest reader on arbitrary bytes: it never panics, and what it accepts is
//! safe to use (every hash is plain hex, every name a plain name) and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srbackup::repo::format::{Manifest, check_name};

const KEY: &str = "snapshots/sr_hub_backup/2026-11-24-10-25-58-842.json";

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(KEY, data) {
        for f in &m.files {
            assert!(f.sha256.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        for o in &m.objects {
            assert!(check_name(&o.name, "object").is_ok());
        }
        let again = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(KEY, &again).unwrap(), m);
    }
});
