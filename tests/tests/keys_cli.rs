//! `arouter keys` on a data directory, with no server running: a key made
//! there works on the gateway started on that directory, and disable and
//! delete take it away.

use std::process::Command;

use arouter_e2e::{binary, Options, Server};

fn keys(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .arg("keys")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("AROUTER_DATA_DIR")
        .output()
        .expect("run arouter keys");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get_key(server: &Server, secret: &str) -> u16 {
    server
        .get(
            "/api/v1/key",
            &format!("Authorization: Bearer {secret}\r\n"),
        )
        .status
}

#[test]
fn a_key_made_offline_works_and_goes_away() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let (ok, out, err) = keys(
        &data,
        &[
            "create",
            "--name",
            "admin",
            "--management",
            "--allowed-models",
            "openai/*,anthropic/*",
        ],
    );
    assert!(ok, "{err}");
    let secret = out.lines().next().unwrap().to_string();
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("hash: "))
        .unwrap()
        .to_string();
    assert!(secret.starts_with("sk-ar-v1-"), "{out}");

    let (ok, listed, _) = keys(&data, &["list"]);
    assert!(ok);
    assert!(
        listed.contains(&hash) && listed.contains("management"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "the secret is shown only once");

    // Bad input is refused with the API's own words.
    let (ok, _, err) = keys(&data, &["create", "--name", "x", "--limit-reset", "hourly"]);
    assert!(!ok);
    assert!(err.contains("limit_reset"), "{err}");
    let (ok, _, err) = keys(&data, &["delete", "nothex"]);
    assert!(!ok);
    assert!(err.contains("not a key hash"), "{err}");

    let server = Server::start_in(Options::default(), home);
    assert_eq!(get_key(&server, &secret), 200);
    let me = server
        .get(
            "/api/v1/key",
            &format!("Authorization: Bearer {secret}\r\n"),
        )
        .json();
    assert_eq!(me["data"]["is_management_key"], true);
    assert_eq!(
        me["data"]["allowed_models"],
        serde_json::json!(["openai/*", "anthropic/*"])
    );

    // The store is shared with the running gateway (WAL): the CLI still works.
    let data = server.data_dir.path().join("data");

    let (ok, _, err) = keys(&data, &["disable", &hash]);
    assert!(ok, "{err}");
    let (_, listed, _) = keys(&data, &["list"]);
    assert_eq!(listed, "no keys\n");
    let (_, listed, _) = keys(&data, &["list", "--all"]);
    assert!(listed.contains("disabled"), "{listed}");
    let (ok, _, err) = keys(&data, &["delete", &hash]);
    assert!(ok, "{err}");
    let (ok, _, err) = keys(&data, &["delete", &hash]);
    assert!(!ok);
    assert!(err.contains("no key"), "{err}");
    drop(server);
}

/// Regression: `arouter keys --config FILE` used `./arouter-data` whatever
/// the file's `data_dir` said, so a key made beside a config file landed in
/// a store the gateway never reads.
#[test]
fn offline_commands_read_the_config_files_data_dir() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("served-data");
    let config = home.path().join("arouter.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let run = |command: &str, args: &[&str]| {
        let out = Command::new(binary())
            .current_dir(home.path())
            .arg(command)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("AROUTER_DATA_DIR")
            .env_remove("AROUTER_CONFIG")
            .output()
            .expect("run arouter");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let created = run("keys", &["create", "--name", "beside-config"]);
    let hash = created
        .lines()
        .find_map(|l| l.strip_prefix("hash: "))
        .unwrap()
        .to_string();
    let added = run("credits", &["add", "5"]);
    assert!(added.contains("total credits 5 USD"), "{added}");

    // The key is in the file's data_dir, and no store was made in ./arouter-data.
    let (ok, listed, err) = keys(&data, &["list"]);
    assert!(ok, "{err}");
    assert!(listed.contains(&hash), "{listed}");
    assert!(!home.path().join("arouter-data").exists());
    // An explicit --data-dir still beats the file.
    let other = home.path().join("other");
    let (ok, listed, err) = keys(&other, &["list"]);
    assert!(ok, "{err}");
    assert_eq!(listed, "no keys\n");
}
