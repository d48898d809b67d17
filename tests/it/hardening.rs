//! Issue 13's serving items: key revocation takes effect at once, `405` names the methods
//! allowed, health probes tell the truth.

use std::process::Command;

use crate::support::TestHub;

/// A key revoked from the command line while the hub runs is refused on the very next request.
#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_request() {
    let hub = TestHub::spawn().await;
    let (status, body) = hub.get("/api/stats").await;
    assert_eq!(status, 200, "{body}");
    // Twice, so any cache of keys seen before would hold it.
    let (status, _) = hub.get("/api/stats").await;
    assert_eq!(status, 200);

    let prefix: String = hub.api_key.chars().take(10).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["keys", "revoke", &prefix, "--database-url"])
        .arg(&hub.config.database_url)
        .output()
        .expect("smshub keys revoke runs");
    assert!(output.status.success(), "{output:?}");

    let (status, body) = hub.get("/api/stats").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // Revoking it again names nothing left to revoke.
    let again = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["keys", "revoke", &prefix, "--database-url"])
        .arg(&hub.config.database_url)
        .output()
        .expect("smshub keys revoke runs");
    assert!(!again.status.success(), "{again:?}");
}
