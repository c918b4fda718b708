//! Trace providers for ops.
