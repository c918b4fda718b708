struct Opaque;

#[ops_core::traced(metadata(thing = Opaque))]
fn f() {}

fn main() {}
