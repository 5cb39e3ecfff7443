//! The async layer over tokio (feature `tokio`).
