//! The peer suite's harness counts what it claims: every case runs, every recorder delivers
//! every span it made, and the end-to-end sink decodes every span of both sides.

use std::sync::Mutex;

use ops_peers::{Case, Peers, e2e};

/// `ops_off` needs no ops queue anywhere in the process, and the end-to-end test installs one:
/// the two run one after the other.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn every_case_runs_and_every_span_is_delivered() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut peers = Peers::new();
    for case in Case::ALL {
        peers.time(case, 3 * ops_peers::CHUNK + 7);
    }
    let report = peers.assert_no_drops();
    // 3 chunks of 2,020 calls (21 roots each) and 7 calls (1 root): 6,067 calls, 64 roots.
    for name in ["ops", "tracing (registry)", "fastrace", "otel_bsp"] {
        assert!(
            report.contains(&format!("{name}: 6131 spans made, 6131 delivered")),
            "{report}"
        );
    }
}

#[test]
fn case_names_round_trip_and_unknown_names_are_refused() {
    for case in Case::ALL {
        assert_eq!(Case::parse(case.name()), Ok(case));
    }
    let err = Case::parse("nope").unwrap_err();
    assert!(
        err.contains("unknown case `nope`") && err.contains("ops_tree"),
        "{err}"
    );
}

#[test]
fn end_to_end_sink_counts_every_span_of_both_sides() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sink = e2e::Sink::start(env!("CARGO_BIN_EXE_peers-sink"));
    assert_eq!(sink.counts(), e2e::SinkCounts::default());
    drop(sink);
    // One round each; `run` panics if the sink misses a span or ops drops one.
    let (ops, peer) = e2e::run(env!("CARGO_BIN_EXE_peers-sink"), 1, 50);
    assert_eq!((ops.len(), peer.len()), (1, 1));
    for r in ops.iter().chain(&peer) {
        assert!(
            r.spans_per_sec > 0.0 && r.cpu_us_per_span > 0.0 && r.bytes_per_span > 0.0,
            "{r:?}"
        );
    }
}

#[test]
fn inputs_are_1kb_of_words_and_differ_per_span() {
    let (a, b) = (e2e::words(1), e2e::words(2));
    assert_eq!((a.len(), b.len()), (1024, 1024));
    assert_ne!(a, b);
    assert!(a.split(' ').count() > 100, "{a}");
}

#[test]
fn rss_runs_count_every_trace_with_the_backend_down() {
    use ops_peers::rss::{self, Down, DownEndpoint};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Nothing listens on a refusing endpoint.
    let refuse = DownEndpoint::start(Down::Refuse);
    let addr = refuse
        .url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "{addr} answered"
    );
    // A hanging one accepts and never answers.
    let hang = DownEndpoint::start(Down::Hang);
    let addr = hang
        .url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("the hanging endpoint accepts");
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    std::io::Write::write_all(&mut stream, b"POST /v1/traces HTTP/1.1\r\n\r\n").unwrap();
    let mut byte = [0u8; 1];
    assert!(
        std::io::Read::read(&mut stream, &mut byte).is_err(),
        "it answered"
    );

    // 100 traces, with a budget of ~20 of them: ops counts every one as enqueued or dropped.
    let ops = rss::ops(&hang, 0.5, 200, Some(500_000));
    assert_eq!(ops.made, 1_000, "{ops}");
    let numbers: Vec<u64> = ops
        .accounting
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // "queue budget 500000 bytes; traces (of 10 spans): E enqueued, X exported, dropped D (...)"
    let (enqueued, dropped) = (numbers[2], numbers[4]);
    assert_eq!(enqueued + dropped, 100, "{ops}");
    assert!(dropped > 0, "{ops}");
    assert!(
        ops.peak_kib >= ops.rss_before_kib && ops.rss_before_kib > 0,
        "{ops}"
    );

    let otel = rss::otel(&refuse, 0.5, 200);
    assert_eq!(otel.made, 1_000, "{otel}");
    assert!(otel.accounting.contains("handed to the exporter"), "{otel}");
    assert!(otel.peak_kib > 0, "{otel}");
}
