struct Handle;

#[ops_core::traced]
fn open() -> Handle {
    Handle
}

fn main() {}
