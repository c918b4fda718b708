extern crate ops_core as renamed_ops;

mod tracing_facade {
    pub use ::ops_core as ops;
}

#[renamed_ops::traced(crate = renamed_ops)]
fn direct() -> u8 {
    1
}

#[renamed_ops::traced(crate = tracing_facade::ops)]
fn through_a_module() -> u8 {
    2
}

fn main() {
    assert_eq!(direct() + through_a_module(), 3);
}
