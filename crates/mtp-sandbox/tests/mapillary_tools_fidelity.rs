//! The acceptance test of the Mapillary emulator: the real `mapillary_tools` 0.14.7 uploads
//! into it unchanged (through injected cuts, 503, 429 and 412). Runs
//! `scripts/mapillary_tools_fidelity.sh` when `MTP_MAPILLARY_TOOLS` points at a
//! mapillary_tools executable. `make fidelity` (part of `make test`) installs it in a venv
//! and runs this; without the variable it fails and says so.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
#[ignore = "needs mapillary_tools 0.14.7 from PyPI: run `make fidelity`"]
fn mapillary_tools_uploads_into_the_emulator() {
    let tool = std::env::var("MTP_MAPILLARY_TOOLS").expect(
        "set MTP_MAPILLARY_TOOLS=/path/to/venv/bin/mapillary_tools (`make fidelity` does it)",
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/mapillary_tools_fidelity.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(&tool)
        .env(
            "MTP_SANDBOX_SERVER",
            env!("CARGO_BIN_EXE_mtp-sandbox-server"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("FIDELITY OK"),
        "fidelity script failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
