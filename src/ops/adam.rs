//! adam (in progress)
