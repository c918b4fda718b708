//! W3C Trace Context and Baggage: the strict parsers, and a `#[traced]` root joining the trace
//! a caller sent (`ops_core::propagation`).

use http::{HeaderMap, HeaderValue};
use ops_core::model::{remote_parent_uuid, span_id_bytes};
use ops_core::propagation::{
    self, BAGGAGE_MAX_MEMBERS, Baggage, RemoteContext, TRACESTATE_MAX_LEN, TraceParent, TraceState,
};
use ops_core::{ObservationContext, TraceFutureExt, traced, update_current_trace};
use proptest::prelude::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn parse(s: &str) -> Result<TraceParent, propagation::InvalidHeader> {
    TraceParent::parse(s.as_bytes())
}

fn hex16(s: &str) -> [u8; 16] {
    u128::from_str_radix(s, 16).unwrap().to_be_bytes()
}

fn hex8(s: &str) -> [u8; 8] {
    u64::from_str_radix(s, 16).unwrap().to_be_bytes()
}

// ---- traceparent ----

#[test]
fn a_valid_traceparent_is_read_and_written_back() {
    let p = parse(VALID).unwrap();
    assert_eq!(p.trace_id(), hex16(TRACE));
    assert_eq!(p.parent_id(), hex8(PARENT));
    assert!(p.is_sampled());
    assert_eq!(p.to_string(), VALID);
    assert_eq!(p.trace_id_hex(), TRACE);
    assert_eq!(p.parent_id_hex(), PARENT);
    let unsampled = parse(&VALID.replace("-01", "-00")).unwrap();
    assert!(!unsampled.is_sampled());
    // Surrounding whitespace is HTTP's, not the value's.
    assert!(parse(&format!(" \t{VALID} ")).is_ok());
    // Level 2's `random` flag is kept; unknown flags are cleared.
    assert_eq!(parse(&VALID.replace("-01", "-03")).unwrap().flags(), 3);
    assert_eq!(parse(&VALID.replace("-01", "-ff")).unwrap().flags(), 3);
}

#[test]
fn every_malformed_traceparent_class_is_rejected() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "shorter"),
        (VALID[..54].into(), "shorter"),
        (format!("{VALID}-"), "version 00 is longer"),
        (format!("{VALID}0"), "version 00 is longer"),
        (VALID.replace("00-4bf", "ff-4bf"), "version ff"),
        (VALID.replacen("00", "0g", 1), "version"),
        (VALID.replacen("00", "0A", 1), "version"),
        (VALID.replace('-', "_"), "'-'"),
        // Uppercase hex is not HEXDIGLC.
        (VALID.to_uppercase(), "trace id"),
        (VALID.replace("4bf92f", "4BF92F"), "trace id"),
        (VALID.replace("00f067aa", "00F067AA"), "parent id"),
        (VALID.replace("-01", "-0A"), "flags"),
        (VALID.replace("4bf92f", "4bf9zf"), "trace id"),
        (VALID.replace("00f067", "00f0+7"), "parent id"),
        (
            VALID.replace(TRACE, &"0".repeat(32)),
            "trace id is all zeros",
        ),
        (
            VALID.replace(PARENT, &"0".repeat(16)),
            "parent id is all zeros",
        ),
        // A field of the wrong width shifts the dashes.
        (format!("00-{TRACE}a-{PARENT}-01"), "'-'"),
        (format!("00-{}-{PARENT}0-01", &TRACE[1..]), "'-'"),
        (
            "00-\u{e9}bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            "'-'",
        ),
    ];
    for (value, why) in cases {
        let err = parse(&value).expect_err(&value);
        assert_eq!(err.header(), "traceparent");
        assert!(err.to_string().contains(why), "{value:?}: {err}");
    }
}

#[test]
fn a_later_version_is_read_as_00_with_extra_fields_after_a_dash() {
    let future = VALID.replacen("00", "cc", 1);
    let p = parse(&future).unwrap();
    assert_eq!(p.trace_id(), hex16(TRACE));
    assert_eq!(p.to_string(), VALID, "written back as version 00");
    let extended = format!("{future}-what-the-future-holds");
    assert_eq!(parse(&extended).unwrap(), p);
    let glued = format!("{future}xyz");
    assert!(parse(&glued).is_err(), "extra fields must start with '-'");
    // Unknown flags of a later version are dropped too.
    assert!(parse(&future.replace("-01", "-09")).unwrap().is_sampled());
}

#[test]
fn two_traceparent_headers_are_ignored_and_counted() {
    let before = propagation::stats();
    let h = headers(&[("traceparent", VALID), ("traceparent", VALID)]);
    let remote = RemoteContext::from_headers(&h);
    assert_eq!(remote.trace_parent(), None);
    assert!(propagation::stats().invalid_traceparent > before.invalid_traceparent);
}

// ---- tracestate ----

#[test]
fn tracestate_is_kept_and_passed_on() {
    let h = headers(&[
        ("traceparent", VALID),
        ("tracestate", "rojo=00f067aa0ba902b7, ,congo=t61rcWkgMzE"),
        ("tracestate", "tenant@vendor=v a"),
    ]);
    let remote = RemoteContext::from_headers(&h);
    let state = remote.trace_state();
    assert_eq!(
        state.to_string(),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@vendor=v a"
    );
    assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
    // Values are not shown by Debug.
    assert!(!format!("{state:?}").contains("t61rc"));
}

#[test]
fn malformed_tracestate_is_dropped_and_counted() {
    let members_33: String = (0..33)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    for bad in [
        "novalue",
        "Upper=1",
        "1abc=1",
        "a=1,a=2",
        "a=has,comma",
        "a=tab\tinside",
        "a=",
        "a=x=y",
        "t@=1",
        "@v=1",
        "t@waytoolongsystemid=1",
        members_33.as_str(),
    ] {
        let before = propagation::stats().invalid_tracestate;
        let remote =
            RemoteContext::from_headers(&headers(&[("traceparent", VALID), ("tracestate", bad)]));
        assert!(remote.trace_state().is_empty(), "{bad:?}");
        assert!(remote.trace_parent().is_some(), "traceparent still stands");
        assert!(
            propagation::stats().invalid_tracestate > before,
            "{bad:?} is counted"
        );
    }
    let members_32: String = (0..32)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        TraceState::parse([members_32.as_bytes()])
            .unwrap()
            .0
            .members()
            .count(),
        32
    );
}

#[test]
fn oversized_tracestate_drops_long_members_first_then_from_the_end() {
    let long = format!("long={}", "x".repeat(200));
    let shorts: Vec<String> = (0..20)
        .map(|i| format!("k{i:02}={}", "y".repeat(20)))
        .collect();
    let value = format!(
        "{},{long},{}",
        shorts[..10].join(","),
        shorts[10..].join(",")
    );
    let (state, dropped) = TraceState::parse([value.as_bytes()]).unwrap();
    assert!(state.len() <= TRACESTATE_MAX_LEN, "{}", state.len());
    assert!(state.get("long").is_none(), "the long member goes first");
    assert_eq!(state.get("k00"), Some("y".repeat(20).as_str()));
    let kept = state.members().count();
    assert_eq!(dropped, 21 - kept);
    assert_eq!(state.members().last().unwrap(), shorts[kept - 1]);
    // Counted when it arrives in a request.
    let before = propagation::stats().dropped_members;
    RemoteContext::from_headers(&headers(&[("traceparent", VALID), ("tracestate", &value)]));
    assert!(propagation::stats().dropped_members >= before + dropped as u64);
}

#[test]
fn tracestate_without_a_valid_traceparent_is_ignored() {
    let remote = RemoteContext::from_headers(&headers(&[
        ("traceparent", &VALID.to_uppercase()),
        ("tracestate", "rojo=1"),
    ]));
    assert!(remote.trace_state().is_empty());
}

// ---- baggage ----

#[test]
fn baggage_carries_user_and_session_percent_decoded() {
    let (b, dropped) = Baggage::parse([
        b"user.id=alice%40example.com, session.id = conv%2042 ;ttl=3".as_slice(),
        b"tenant=acme,emoji=%F0%9F%98%80;p".as_slice(),
    ])
    .unwrap();
    assert_eq!(dropped, 0);
    assert_eq!(b.user_id(), Some("alice@example.com"));
    assert_eq!(b.session_id(), Some("conv 42"));
    assert_eq!(
        b.others().collect::<Vec<_>>(),
        ["tenant=acme", "emoji=%F0%9F%98%80;p"]
    );
    // Debug shows keys, never values.
    let debug = format!("{b:?}");
    assert!(
        !debug.contains("alice") && !debug.contains("acme"),
        "{debug}"
    );
    // Invalid UTF-8 becomes U+FFFD, as the spec says.
    let (b, _) = Baggage::parse([b"user.id=%C3%28".as_slice()]).unwrap();
    assert_eq!(b.user_id(), Some("\u{fffd}("));
}

#[test]
fn langfuse_baggage_keys_are_read_when_ours_are_absent() {
    let (b, _) =
        Baggage::parse([b"langfuse_user_id=u1,langfuse_session_id=s1".as_slice()]).unwrap();
    assert_eq!((b.user_id(), b.session_id()), (Some("u1"), Some("s1")));
    assert_eq!(b.others().count(), 2, "passed on unchanged");
    let (b, _) = Baggage::parse([b"langfuse_user_id=lf,user.id=otel".as_slice()]).unwrap();
    assert_eq!(b.user_id(), Some("otel"));
}

#[test]
fn malformed_baggage_is_dropped_and_counted() {
    let huge = format!("k={}", "v".repeat(8200));
    for bad in [
        "novalue",
        "=v",
        "a b=v",
        "k=has space",
        "k=quo\"te",
        "k=back\\slash",
        "a=1,,b=2",
        "a=1,",
        "k=v;=p",
        "k=v;p=a b",
        huge.as_str(),
    ] {
        let before = propagation::stats().invalid_baggage;
        let remote = RemoteContext::from_headers(&headers(&[("baggage", bad)]));
        assert!(remote.baggage().is_empty(), "{bad:?}");
        assert!(
            propagation::stats().invalid_baggage > before,
            "{bad:?} is counted"
        );
    }
}

#[test]
fn baggage_past_64_members_is_cut_and_counted() {
    let many: String = (0..70)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let (b, dropped) = Baggage::parse([many.as_bytes()]).unwrap();
    assert_eq!(b.others().count(), BAGGAGE_MAX_MEMBERS);
    assert_eq!(dropped, 6);
    let long_user = format!("user.id={}", "u".repeat(300));
    let (b, dropped) = Baggage::parse([long_user.as_bytes()]).unwrap();
    assert_eq!((b.user_id(), dropped), (None, 1));
}

// ---- fuzz: nothing panics ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_header_bytes_never_panic(
        tp in proptest::collection::vec(any::<u8>(), 0..80),
        ts in proptest::collection::vec(any::<u8>(), 0..600),
        bg in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let _ = TraceParent::parse(&tp);
        let _ = TraceState::parse([ts.as_slice()]);
        let _ = Baggage::parse([bg.as_slice()]);
        let mut h = HeaderMap::new();
        for (name, value) in [("traceparent", &tp), ("tracestate", &ts), ("baggage", &bg)] {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                h.insert(name, v);
            }
        }
        let context = propagation::extract(&h);
        let mut out = HeaderMap::new();
        propagation::inject_context(&context, &mut out);
        // What goes out parses back.
        if let Some(v) = out.get("traceparent") {
            prop_assert!(TraceParent::parse(v.as_bytes()).is_ok());
        }
        if let Some(v) = out.get("baggage") {
            prop_assert!(Baggage::parse([v.as_bytes()]).is_ok());
        }
    }

    #[test]
    fn near_valid_traceparents_never_panic(
        at in 0usize..60,
        byte in any::<u8>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut v = VALID.as_bytes().to_vec();
        if at < v.len() { v[at] = byte; } else { v.push(byte); }
        v.extend(tail);
        let _ = TraceParent::parse(&v);
    }

    #[test]
    fn baggage_ids_round_trip(user in "\\PC{1,40}", session in "[ -~]{1,40}") {
        // Through a real header: the values survive percent-encoding.
        let header = format!(
            "user.id={},session.id={}",
            encode(&user),
            encode(&session)
        );
        let (b, _) = Baggage::parse([header.as_bytes()]).unwrap();
        prop_assert_eq!(b.user_id(), Some(user.as_str()));
        prop_assert_eq!(b.session_id(), Some(session.as_str()));
    }
}

fn encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

// ---- joining the caller's trace ----

#[traced(kind = "message")]
fn handler() -> u32 {
    step() + 1
}

#[traced]
fn step() -> u32 {
    1
}

#[test]
fn a_root_in_an_extracted_context_joins_the_callers_trace() {
    let capture = ops_testkit::capture();
    let h = headers(&[
        ("traceparent", VALID),
        ("baggage", "user.id=alice,session.id=conv-9"),
    ]);
    let before = propagation::stats().extracted;
    let context = propagation::extract(&h);
    assert!(context.is_remote() && !context.is_root() && context.is_sampled());
    assert!(propagation::stats().extracted > before);
    capture.run(|| context.in_scope(handler));
    let traces = capture.traces();
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_eq!(trace.id.as_str(), "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
    assert_eq!(trace.id.to_w3c_bytes(), hex16(TRACE));
    let root = capture.find("handler").unwrap();
    assert_eq!(root.parent_id, Some(remote_parent_uuid(hex8(PARENT))));
    assert_eq!(span_id_bytes(root.parent_id.unwrap()), hex8(PARENT));
    assert_eq!(capture.find("step").unwrap().parent_id, Some(root.id));
    assert_eq!(trace.attributes.user_id.as_deref(), Some("alice"));
    assert_eq!(trace.attributes.session_id.as_deref(), Some("conv-9"));
}

#[traced(sample_rate = 0.0)]
fn never_sampled_locally() {}

#[test]
fn the_callers_sampled_flag_wins_over_the_local_rate() {
    let capture = ops_testkit::capture();
    // Sampled by the caller: recorded though this root's own rate is 0.
    let sampled = propagation::extract(&headers(&[("traceparent", VALID)]));
    capture.run(|| sampled.in_scope(never_sampled_locally));
    assert_eq!(capture.traces().len(), 1);

    // Not sampled by the caller: nothing is recorded, children included.
    let capture = ops_testkit::capture();
    let unsampled =
        propagation::extract(&headers(&[("traceparent", &VALID.replace("-01", "-00"))]));
    assert!(!unsampled.is_sampled());
    let out = capture.run(|| {
        unsampled.in_scope(|| {
            let n = handler();
            // The trace still goes on to the next service, unsampled.
            let mut h = HeaderMap::new();
            assert!(propagation::inject(&mut h));
            (n, h)
        })
    });
    assert_eq!(out.0, 2);
    assert!(capture.traces().is_empty());
    assert_eq!(out.1["traceparent"], VALID.replace("-01", "-00"));
}

#[traced(kind = "message", capture_output = false)]
fn gateway() -> HeaderMap {
    update_current_trace(|t| {
        t.user_id("user 1").session_id("s-1");
    });
    call_worker()
}

#[traced(capture_output = false)]
fn call_worker() -> HeaderMap {
    let mut h = HeaderMap::new();
    assert!(propagation::inject(&mut h));
    h
}

#[test]
fn inject_writes_the_current_observation_as_the_parent() {
    let capture = ops_testkit::capture();
    let out = capture.run(gateway);
    let call = capture.find("call_worker").unwrap();
    let trace = &capture.traces()[0];
    let parent = TraceParent::parse(out["traceparent"].as_bytes()).unwrap();
    assert_eq!(parent.trace_id(), trace.id.to_w3c_bytes());
    assert_eq!(parent.parent_id(), span_id_bytes(call.id));
    assert!(parent.is_sampled());
    assert!(out.get("tracestate").is_none());
    assert_eq!(out["baggage"], "user.id=user%201,session.id=s-1");
    // The worker gets back the very same trace id.
    let worker = propagation::extract(&out);
    assert_eq!(worker.trace_id().unwrap(), trace.id);
}

#[traced(
    kind = "message",
    user_id = "user 2",
    session_id = "s-2",
    capture_output = false
)]
fn gateway_with_attributes() -> HeaderMap {
    call_worker()
}

#[traced(capture_output = false)]
fn gateway_without_ids() -> HeaderMap {
    child_with_user()
}

#[traced(user_id = "from-child", capture_output = false)]
fn child_with_user() -> HeaderMap {
    call_worker()
}

#[traced(user_id = user, capture_output = false)]
async fn async_gateway(user: &str) -> HeaderMap {
    tokio::task::yield_now().await;
    call_worker()
}

#[test]
fn ids_set_on_traced_calls_go_out_as_baggage() {
    let capture = ops_testkit::capture();
    let out = capture.run(gateway_with_attributes);
    assert_eq!(out["baggage"], "user.id=user%202,session.id=s-2");
    // Set on a synchronous child: the trace takes the first set, and so does the baggage.
    let out = capture.run(gateway_without_ids);
    assert_eq!(out["baggage"], "user.id=from-child");
    // `update_current_trace` still wins over an attribute.
    #[traced(user_id = "attribute", capture_output = false)]
    fn both() -> HeaderMap {
        update_current_trace(|t| {
            t.user_id("updated");
        });
        call_worker()
    }
    let out = capture.run(both);
    assert_eq!(out["baggage"], "user.id=updated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_set_on_an_async_traced_call_go_out_as_baggage() {
    let capture = ops_testkit::capture();
    let out = capture.scope(async_gateway("u-async")).await;
    assert_eq!(out["baggage"], "user.id=u-async");
    assert_eq!(
        capture.traces()[0].attributes.user_id.as_deref(),
        Some("u-async")
    );
}

#[traced(capture_output = false)]
fn with_a_huge_user() -> HeaderMap {
    update_current_trace(|t| {
        t.user_id("u".repeat(300));
    });
    let mut h = HeaderMap::new();
    propagation::inject(&mut h);
    h
}

#[test]
fn an_id_too_long_for_baggage_is_left_out_and_counted() {
    let capture = ops_testkit::capture();
    let before = propagation::stats().dropped_members;
    let out = capture.run(with_a_huge_user);
    assert!(out.get("traceparent").is_some());
    assert!(out.get("baggage").is_none());
    assert!(propagation::stats().dropped_members > before);
}

#[test]
fn inject_passes_tracestate_and_other_baggage_on() {
    let capture = ops_testkit::capture();
    let h = headers(&[
        ("traceparent", &VALID.replace("-01", "-03")),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("baggage", "tenant=acme;p=1,user.id=bob"),
    ]);
    let context = propagation::extract(&h);
    // Outside any traced call, the context passes through as it came.
    let mut through = HeaderMap::new();
    assert!(propagation::inject_context(&context, &mut through));
    assert_eq!(through["traceparent"], h["traceparent"]);
    let out = capture.run(|| context.in_scope(call_worker));
    let call = capture.find("call_worker").unwrap();
    let parent = TraceParent::parse(out["traceparent"].as_bytes()).unwrap();
    assert_eq!(parent.trace_id(), hex16(TRACE));
    assert_eq!(parent.parent_id(), span_id_bytes(call.id));
    assert_eq!(parent.flags(), 3, "the caller's random flag is kept");
    assert_eq!(out["tracestate"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_eq!(out["baggage"], "user.id=bob,tenant=acme;p=1");
}

#[test]
fn nothing_is_injected_outside_a_trace() {
    let mut h = HeaderMap::new();
    assert!(!propagation::inject(&mut h));
    assert!(h.is_empty());
    assert_eq!(ObservationContext::current().trace_parent(), None);
    assert!(propagation::extract(&HeaderMap::new()).is_root());
}

#[traced]
async fn async_handler() -> u32 {
    tokio::task::yield_now().await;
    step()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_handler_joins_through_in_trace() {
    let capture = ops_testkit::capture();
    let context = propagation::extract(&headers(&[("traceparent", VALID)]));
    let n = capture
        .scope(async { async_handler().in_trace(&context).await })
        .await;
    assert_eq!(n, 1);
    let root = capture.find("async_handler").unwrap();
    assert_eq!(root.parent_id, Some(remote_parent_uuid(hex8(PARENT))));
    assert_eq!(capture.traces()[0].id.to_w3c_bytes(), hex16(TRACE));
}

#[test]
fn explicit_parent_accepts_an_extracted_context() {
    #[traced(parent = context, skip_all)]
    fn with_parent(context: &ObservationContext) {}

    let capture = ops_testkit::capture();
    let context = propagation::extract(&headers(&[("traceparent", VALID)]));
    capture.run(|| with_parent(&context));
    let root = capture.find("with_parent").unwrap();
    assert_eq!(root.parent_id, Some(remote_parent_uuid(hex8(PARENT))));
}
