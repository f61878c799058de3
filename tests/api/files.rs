//! The files latchkey writes hold password hashes and signing keys: the
//! store, its `-wal` and `-shm` companions and a backup are created
//! readable by their owner only, whatever the umask they were made under.

use crate::helpers::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The binary under `umask 000`, which would make every new file
/// world-readable and writable (0666) unless latchkey sees to it.
fn latchkey_under_open_umask(db: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("DATABASE_URL", db)
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_store_its_wal_and_shm_and_a_backup_are_owner_only_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    let mut server = latchkey_under_open_umask(&db)
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .unwrap();
    let address = listening_address(&mut server);
    // A write, so that the write-ahead log and its index exist.
    let registered = reqwest::Client::new()
        .post(format!("{address}/api/user"))
        .json(&json!({ "first_name": "Ada", "last_name": "Lovelace",
                       "email": unique_email(), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    for file in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }

    let copy = dir.path().join("copy.db");
    let backup = latchkey_under_open_umask(&db)
        .arg("backup")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert_eq!(mode(&copy), 0o600, "the backup");
    assert!(std::fs::metadata(&copy).unwrap().len() > 0);

    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn a_store_created_by_a_command_is_owner_only_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let migrated = latchkey_under_open_umask(&db)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success());
    assert_eq!(mode(&db), 0o600);
}
