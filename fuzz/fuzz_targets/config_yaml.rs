//! The YAML configuration: `Config::from_yaml` on any UTF-8 text, native keys or the
//! original's `orchestrator:` block (src/config/legacy.rs). A configuration that loads must
//! survive the documented round trip: `to_yaml` reads back to a configuration that resolves
//! to the same run.
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
    // Documented invariant (Config::to_yaml): from_yaml reads it back to a configuration
    // that resolves to the same levels for every budget (levels left to their defaults come
    // back as their default shares) and is equal in everything else.
    let yaml = config.to_yaml();
    let mut again = match Config::from_yaml(&yaml, "fuzz round trip") {
        Ok(again) => again,
        Err(error) => panic!("to_yaml output does not load: {error}\n{yaml}"),
    };
    for budget in [None, Some(1 << 20), Some(3 << 30), Some(u64::MAX / 4)] {
        assert_eq!(
            again.memory_rules_within(budget),
            config.memory_rules_within(budget),
            "round trip changed the levels for a budget of {budget:?}:\n{yaml}"
        );
    }
    again.memory = config.memory;
    assert_eq!(again, config, "round trip changed the config:\n{yaml}");
});
