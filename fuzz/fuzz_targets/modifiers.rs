//! Resource-modifier rules from a ConfigMap anyone in the namespace may edit: parsing ends
//! with Ok or a ModifierError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lifeboat_engine::modifiers::Modifiers::parse(text);
    }
});
