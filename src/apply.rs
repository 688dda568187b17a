//! Apply (shell). STUB.
