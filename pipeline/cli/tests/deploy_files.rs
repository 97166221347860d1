//! The production compose stack cannot run on these machines (no Docker engine), so it is kept
//! correct by reading: the YAML parses, every ttlc service runs a subcommand the binary really
//! has, the infrastructure has health checks, and `.env.example` holds placeholders only.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use serde_norway::Value;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/compose/docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is valid YAML")
}

#[test]
fn compose_services_are_complete_and_healthy() {
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    for required in [
        "redpanda",
        "postgres",
        "clickhouse",
        "init",
        "normalize",
        "archive-pg",
        "archive-ch",
        "rules",
        "execute",
        "api",
        "ingest",
    ] {
        assert!(names.contains(&required), "service {required} missing: {names:?}");
    }
    for infra in ["redpanda", "postgres", "clickhouse", "api"] {
        assert!(
            services[infra]["healthcheck"]["test"].is_sequence()
                || services[infra]["healthcheck"]["test"].is_string(),
            "{infra} has a healthcheck"
        );
    }
    assert!(
        doc["services"]["redpanda"]["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|a| a.as_str().is_some_and(|s| s.starts_with("--schema-registry-addr"))),
        "redpanda runs with the schema registry"
    );
}

#[test]
fn compose_stage_commands_exist_in_the_binary() {
    let doc = compose();
    for (name, service) in doc["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let Some(command) = service["command"].as_sequence() else { continue };
        let argv: Vec<&str> = command.iter().filter_map(Value::as_str).collect();
        if service["image"].as_str().is_none_or(|i| !i.starts_with("ttlc")) && name != "init" {
            continue;
        }
        // `init` runs a shell line of ttlc commands; the others run one subcommand each.
        let joined = argv.join(" ");
        let invocations: Vec<Vec<&str>> = if name == "init" {
            joined.split("&&").map(|c| c.split_whitespace().skip(1).collect()).collect()
        } else {
            vec![argv]
        };
        for args in invocations {
            let out = Command::new(env!("CARGO_BIN_EXE_ttlc"))
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "service {name}: `ttlc {}` is not a subcommand",
                args.join(" ")
            );
        }
    }
}

#[test]
fn env_example_has_placeholders_only() {
    let text = std::fs::read_to_string(root().join(".env.example")).unwrap();
    let vars: BTreeMap<&str, &str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .collect();
    for secret in [
        "POSTGRES_PASSWORD",
        "CLICKHOUSE_PASSWORD",
        "TTLC_JWT_SECRET",
        "TTLC_SIGN_API_KEY",
        "TTLC_WEBHOOK_SECRET",
        "TTLC_PSEUDONYM_SECRET",
    ] {
        assert_eq!(vars.get(secret), Some(&"change-me"), "{secret} must be a placeholder");
    }
    let text = std::fs::read_to_string(root().join("deploy/compose/docker-compose.yml")).unwrap();
    for secret in ["TTLC_JWT_SECRET", "POSTGRES_PASSWORD"] {
        assert!(
            text.contains(&format!("${{{secret}:?")),
            "{secret} is required from .env, never defaulted"
        );
    }
}
