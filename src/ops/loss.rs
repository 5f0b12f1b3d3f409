//! loss (in progress)
