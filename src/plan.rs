//! Planning (pure). STUB: replaced by the real implementation.
