#[ops_core::traced]
fn show<T: std::fmt::Debug>(value: T) -> String {
    format!("{value:?}")
}

fn main() {}
