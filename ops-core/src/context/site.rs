//! What a traced function is, known at compile time.

use crate::model::ObservationKind;

/// What a traced function is, fixed at compile time: one `static` per function.
#[derive(Debug)]
pub struct Site {
    pub(crate) name: &'static str,
    pub(crate) kind: ObservationKind,
}

impl Site {
    /// A function's name and kind.
    pub const fn new(name: &'static str, kind: ObservationKind) -> Self {
        Self { name, kind }
    }
}
