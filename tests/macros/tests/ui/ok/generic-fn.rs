use ops_core::traced;
use serde::Serialize;

#[traced]
fn show<T: Serialize + std::fmt::Display>(value: T) -> String {
    value.to_string()
}

#[traced]
fn pick<'a, K, V>(map: &'a std::collections::BTreeMap<K, V>, key: &K) -> Option<&'a V>
where
    K: Ord + Serialize,
    V: Serialize,
{
    map.get(key)
}

struct Wrapper<T>(T);

impl<T: Clone + Serialize + Send + Sync> Wrapper<T> {
    // `T` belongs to the impl; the macro cannot see that it is generic, and captures it now.
    #[traced]
    fn replace(&mut self, value: T) -> T {
        std::mem::replace(&mut self.0, value)
    }
}

// serde has no `Serialize` for `[T; N]` with a generic `N`: skip it.
#[traced(skip(values))]
fn const_generic<const N: usize>(values: [u8; N]) -> usize {
    values.len()
}

fn main() {
    assert_eq!(show(5), "5");
    let map = [(1, "a")].into_iter().collect();
    assert_eq!(pick(&map, &1), Some(&"a"));
    let mut w = Wrapper(1u8);
    assert_eq!(w.replace(2), 1);
    assert_eq!(const_generic([1, 2, 3]), 3);
}
