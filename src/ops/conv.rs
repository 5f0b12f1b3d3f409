//! conv (in progress)
