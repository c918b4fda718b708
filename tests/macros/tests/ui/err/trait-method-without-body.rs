trait Tool {
    #[ops_core::traced]
    fn call(&self, input: String) -> String;
}

fn main() {}
