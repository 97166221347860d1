//! The ingest decode path, push frame → gunzip → fetch result → one raw.v1 envelope per message
//! (serialized as published), over frames built from the mock server's `all` scenario.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ttlc_ingest::bench::decode_frames;
use ttlc_ingest::mock_server::script::{Scenario, Step, script};
use ttlc_ingest::wire::message_frame;
use ttlc_webcast::{Common, Message, ProtoMessageFetchResult};

fn frames() -> (Vec<Vec<u8>>, u64) {
    let mut out = Vec::new();
    let mut id: i64 = 7_300_000_000_000_000_000;
    for _ in 0..50 {
        for step in script(Scenario::All) {
            let Step::Batch(msgs) = step else { continue };
            let messages: Vec<Message> = msgs
                .iter()
                .map(|m| {
                    id += 1;
                    let common =
                        Common { msg_id: id, create_time: 1_700_000_000_000, ..Default::default() };
                    let (method, payload) = m.encode(common);
                    Message { method, payload, msg_id: id, ..Default::default() }
                })
                .collect();
            let result = ProtoMessageFetchResult { messages, need_ack: true, ..Default::default() };
            out.push(message_frame(id, &result));
        }
    }
    let messages = decode_frames(&out).messages;
    (out, messages)
}

fn bench(c: &mut Criterion) {
    let (frames, messages) = frames();
    let mut group = c.benchmark_group("ingest_decode");
    group.throughput(Throughput::Elements(messages));
    group.bench_function("push_frames_to_envelopes", |b| b.iter(|| decode_frames(&frames)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
