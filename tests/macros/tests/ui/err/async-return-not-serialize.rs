struct Handle;

#[ops_core::traced]
async fn open() -> Result<Handle, std::io::Error> {
    Ok(Handle)
}

fn main() {}
