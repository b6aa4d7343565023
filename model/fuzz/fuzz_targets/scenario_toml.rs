//! Scenario parsing and validation never panic on any input; whatever they
//! accept is valid and survives a TOML round trip unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qmec_model::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(scenario) = Scenario::from_toml(text) {
        assert!(scenario.validate().is_ok());
        let again = Scenario::from_toml(&scenario.to_toml()).expect("an accepted scenario re-parses");
        assert_eq!(again, scenario);
    }
});
