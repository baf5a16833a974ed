//! The JSON API for hospital systems and scripts, versioned by path.

pub mod v1;
