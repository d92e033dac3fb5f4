//! A third-party CSC client, unchanged: pyHanko's CSC signer (CSC 1.0.4.0) signs a batch of
//! PDFs through sigillo in ONE signHash call, and pyHanko's own validator checks integrity and
//! trust up to the gateway root. The Python side is tests/e2e/pyhanko_csc.py.

use std::process::Command;

use serde_json::Value;

use crate::support::{env, random_suffix, TestApp};

async fn sign_pdfs(key_algo: &str, count: usize, extra: &[&str]) {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _token, credential, pin) = app.active_credential(key_algo, "signing").await;
    let dir = std::path::PathBuf::from(env("SIGILLO_TEST_TMP"))
        .join(format!("pyhanko-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, app.services().ca.root().to_pem().unwrap()).unwrap();

    let out = Command::new(env("SIGILLO_TEST_PYTHON"))
        .arg("tests/e2e/pyhanko_csc.py")
        .args(["--base-url", &app.public, "--api-version", "v1"])
        .args([
            "--user",
            &user.user_id,
            "--password",
            &user.password,
            "--pin",
            &pin,
        ])
        .args(["--credential-id", &credential])
        .arg("--outbox")
        .arg(&app.config.otp.outbox_path)
        .arg("--root-cert")
        .arg(&root)
        .args(["--count", &count.to_string()])
        .arg("--out-dir")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .expect("the pyHanko venv python (SIGILLO_TEST_PYTHON) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pyHanko failed:\n{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(summary["signed"], count, "{summary}");
    assert_eq!(
        summary["valid"], count,
        "every PDF validates (intact, valid, trusted): {summary}"
    );
    assert_eq!(
        summary["signHash_calls"], 1,
        "the whole batch in one signHash: {summary}"
    );
    let signed = std::fs::read_dir(dir.join("out")).unwrap().count();
    assert!(signed >= count, "{signed} files written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyhanko_signs_a_batch_of_pdfs_with_ecdsa() {
    sign_pdfs("ec-p256", 4, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyhanko_signs_a_batch_of_pdfs_with_rsa_pss() {
    sign_pdfs("rsa-2048", 3, &["--prefer-pss"]).await;
}
