#![no_main]
//! Any text as a rule file: parse (with line numbers), compile, export to every language.

use corral_hunt::event::Schema;
use corral_hunt::export::{export, ExportFormat};
use corral_hunt::rule::matcher::Compiled;
use corral_hunt::rule::parse_rules;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rules, _errors) = parse_rules(text, "fuzz");
    let mut schema = Schema::new();
    for r in &rules {
        let _ = Compiled::new(r, &mut schema);
        for f in [
            ExportFormat::Sigma,
            ExportFormat::Eql,
            ExportFormat::Kql,
            ExportFormat::Spl,
        ] {
            let _ = export(r, "fuzz", text, f);
        }
    }
});
