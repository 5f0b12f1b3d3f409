//! conv_transpose (in progress)
