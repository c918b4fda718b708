use ops_core::traced;

struct Db;

#[traced(skip(db))]
fn query(db: &Db, sql: &str) -> usize {
    let _ = db;
    sql.len()
}

#[traced(skip_all, capture_output = false)]
fn open(db: Db) -> Db {
    db
}

#[traced(capture_input = false)]
fn no_inputs(db: &Db) -> u8 {
    let _ = db;
    1
}

#[traced(capture_output = false)]
fn no_output() -> Db {
    Db
}

fn main() {
    assert_eq!(query(&Db, "select 1"), 8);
    let _ = open(Db);
    assert_eq!(no_inputs(&Db), 1);
    let _ = no_output();
}
