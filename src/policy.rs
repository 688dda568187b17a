//! Policy evaluation (pure). STUB: replaced by the real implementation.
