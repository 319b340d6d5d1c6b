//! `ui/src/lib/wire.ts` is generated from the wire types; this test fails when the
//! checked-in file is stale (CI runs it), and rewrites it with `MAI_UPDATE_WIRE_TS=1`.

use std::path::PathBuf;

#[test]
fn ui_wire_ts_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/wire.ts");
    let want = mai_wire::ts::typescript();
    if std::env::var_os("MAI_UPDATE_WIRE_TS").is_some() {
        std::fs::write(&path, &want).expect("write ui/src/lib/wire.ts");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "ui/src/lib/wire.ts is stale: the wire types changed. Regenerate it with\n  \
         MAI_UPDATE_WIRE_TS=1 cargo test -p mai-wire --test typescript\nand commit the result."
    );
}
