//! The YAML configuration: `Config::from_yaml` on any UTF-8 text, native keys or the
//! original's `orchestrator:` block (src/config/legacy.rs). A configuration that loads must
//! survive the documented round trip: `to_yaml` reads back to an equal configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resctl::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_yaml(text, "fuzz") else {
        return;
    };
    // Everything a loaded configuration offers without a host must not panic either.
    let _ = config.resolve_memory(None);
    let _ = config.resolve_memory(Some(4 << 30));
    let _ = config.validate_for_limit(Some(1 << 30));
    let _ = config.notify_signal_parsed();
    for slice in config.slices.keys() {
        let _ = config.for_slice(slice).validate();
    }
    // Documented invariant (Config::to_yaml): from_yaml reads it back to an equal config.
    let yaml = config.to_yaml();
    match Config::from_yaml(&yaml, "fuzz round trip") {
        Ok(again) => assert_eq!(again, config, "round trip changed the config:\n{yaml}"),
        Err(error) => panic!("to_yaml output does not load: {error}\n{yaml}"),
    }
});
