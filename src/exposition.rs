//! The exposition wrapper. STUB.
