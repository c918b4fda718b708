//! Built by `tests/statically_disable.rs` with `ops-core`'s `disabled` feature: every
//! `#[traced]` function must be emitted unchanged. This file would not compile otherwise:
//! `NotSerialize` parameters and return values are compile errors for a traced function.

use ops_core::traced;

struct NotSerialize(u8);

#[traced(kind = "tool")]
fn unchanged(x: NotSerialize) -> NotSerialize {
    x
}

#[traced(kind = "generation", model = "m", metadata(k = 1))]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

fn main() {
    let queue = ops_core::TraceQueueManager::builder()
        .build()
        .expect("a queue");
    let _guard = ops_core::set_default(queue.clone());
    assert!(ops_core::is_enabled(), "a queue is installed");
    assert_eq!(unchanged(NotSerialize(7)).0, 7);
    assert_eq!(add(1, 2), 3);
    assert_eq!(queue.stats().enqueued, 0, "nothing was traced");
    println!("statically disabled: ok");
}
