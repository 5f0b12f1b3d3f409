// adam kernels
