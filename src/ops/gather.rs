//! gather (in progress)
