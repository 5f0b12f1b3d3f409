//! random (in progress)
