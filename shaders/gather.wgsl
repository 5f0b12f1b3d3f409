// gather kernels
