//! `client.d.ts` declares exactly what `client.js` exports (both are shipped in the core
//! crate and served beside each other). That the module writes nothing to `globalThis` is
//! checked in the browser (`tests/browser/features.rs`, `json_helpers`).

use std::collections::BTreeSet;

use passlock_core::{CLIENT_DTS, CLIENT_JS};

/// The names after `export const|function|async function|class` at the start of a line.
fn exported(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|rest| {
            let rest = rest.strip_prefix("async ").unwrap_or(rest);
            ["const ", "function ", "class "]
                .iter()
                .find_map(|kind| rest.strip_prefix(kind))
        })
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_types_declare_every_export_of_the_client() {
    let js = exported(CLIENT_JS);
    let dts = exported(CLIENT_DTS);
    assert!(js.len() >= 17, "{js:?}");
    assert_eq!(js, dts, "client.js exports vs client.d.ts declarations");
    assert!(CLIENT_JS.contains("export default defaultClient;"));
    assert!(CLIENT_DTS.contains("export default client;"));
    for method in [
        "isSupported",
        "capabilities",
        "autofill",
        "upgrade",
        "renamePasskey",
    ] {
        assert!(
            CLIENT_DTS.contains(&format!("  {method}(")),
            "PasslockClient lacks {method}"
        );
    }
}
