struct Connection;

#[ops_core::traced]
fn query(conn: &Connection, sql: &str) -> usize {
    let _ = conn;
    sql.len()
}

fn main() {}
