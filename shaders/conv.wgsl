// conv kernels
