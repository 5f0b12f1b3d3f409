//! batchnorm (in progress)
