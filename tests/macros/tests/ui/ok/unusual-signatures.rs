use ops_core::traced;

#[traced]
fn destructured((a, b): (u8, u8), [c, _]: [u8; 2], _: u8) -> u8 {
    a + b + c
}

#[traced]
fn raw_identifiers(r#type: &str, r#match: u8) -> String {
    format!("{type}{match}", type = r#type, match = r#match)
}

#[traced]
fn never_returns_normally(fail: bool) -> u8 {
    if fail {
        panic!("as asked");
    }
    0
}

#[traced]
fn returns_iterator(n: u8) -> impl Iterator<Item = u8> {
    0..n
}

#[traced(skip(p))]
pub(crate) unsafe fn unsafe_fn(p: *const u8) -> u8 {
    unsafe { *p }
}

#[traced]
extern "C" fn extern_fn(x: i32) -> i32 {
    x
}

/// Documented.
#[traced]
#[must_use]
#[inline]
fn with_attributes(mut n: u8) -> u8 {
    n += 1;
    n
}

fn main() {
    assert_eq!(destructured((1, 2), [3, 4], 5), 6);
    assert_eq!(raw_identifiers("t", 1), "t1");
    assert_eq!(never_returns_normally(false), 0);
    assert_eq!(returns_iterator(3).count(), 3);
    let x = 7u8;
    assert_eq!(unsafe { unsafe_fn(&x) }, 7);
    assert_eq!(extern_fn(3), 3);
    assert_eq!(with_attributes(1), 2);
}
