//! Throughput of the normalize hot path, in events per second.
//!
//! Measured per event type (decode + normalize + eventId, from the raw record bytes exactly as the
//! stage receives them) and over the demo mix, then the two steps the stage adds per event: JSON
//! Schema validation and Avro encoding, and the whole stage path together.
//!
//! ```text
//! cargo bench -p ttlc-normalize --bench normalize -- --quick
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

fn raw_fixture(name: &str) -> Vec<u8> {
    let text = std::fs::read(fixtures().join("raw").join(format!("{name}.json"))).unwrap();
    // The stage receives compact JSON; re-serialize the pretty fixture the same way.
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    serde_json::to_vec(&v).unwrap()
}

fn demo_lines() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(fixtures().join("demo/mixed.ndjson")).unwrap();
    text.lines().filter(|l| !l.is_empty()).map(|l| l.as_bytes().to_vec()).collect()
}

fn per_type(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize_bytes");
    g.throughput(Throughput::Elements(1));
    for name in [
        "chat-b64",
        "chat",
        "gift-streak-2-b64",
        "gift-streak-2",
        "like-b64",
        "like",
        "join-b64",
        "join",
        "social-follow-b64",
        "emote-b64",
        "battle-armies-b64",
        "raw-room-user-seq",
        "connected-direct",
    ] {
        let bytes = raw_fixture(name);
        g.bench_function(name, |b| {
            b.iter(|| ttlc_normalize::normalize_bytes(black_box(&bytes)).unwrap())
        });
    }
    g.finish();
}

fn demo_mix(c: &mut Criterion) {
    let lines = demo_lines();
    let mut g = c.benchmark_group("demo_mix");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("normalize_bytes", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(ttlc_normalize::normalize_bytes(black_box(line)).unwrap());
            }
        })
    });
    let events: Vec<_> =
        lines.iter().map(|l| ttlc_normalize::normalize_bytes(l).unwrap()).collect();
    let docs: Vec<_> = events.iter().map(|e| serde_json::to_value(e).unwrap()).collect();
    ttlc_schemas::validate::warm_up();
    g.bench_function("to_json_value", |b| {
        b.iter(|| {
            for e in &events {
                black_box(serde_json::to_value(black_box(e)).unwrap());
            }
        })
    });
    g.bench_function("validate_unified", |b| {
        b.iter(|| {
            for d in &docs {
                ttlc_schemas::validate_unified(black_box(d)).unwrap();
            }
        })
    });
    g.bench_function("encode_unified", |b| {
        b.iter(|| {
            for e in &events {
                black_box(ttlc_schemas::encode_unified(black_box(e)).unwrap());
            }
        })
    });
    g.bench_function("stage_process", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(ttlc_normalize::stage::process(black_box(line)).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, per_type, demo_mix);
criterion_main!(benches);
