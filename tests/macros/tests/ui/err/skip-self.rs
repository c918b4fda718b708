struct S;

impl S {
    #[ops_core::traced(skip(self))]
    fn f(&self) {}
}

fn main() {}
