// Activations as both the elementwise kernels and the tiled GEMM epilogues apply them: one
// expression per activation, so an activation fused into a product's epilogue computes bit for bit
// what its own kernel would. Codes are ops::elementwise::Activation::code.

const ACTIVATION_NONE: u32 = 0u;
const ACTIVATION_RELU: u32 = 1u;
const ACTIVATION_LEAKY_RELU: u32 = 2u;
const ACTIVATION_TANH: u32 = 3u;
const ACTIVATION_SIGMOID: u32 = 4u;

// `alpha` is the LeakyReLU slope.
fn apply_activation(code: u32, alpha: f32, x: f32) -> f32 {
    switch code {
        case 1u: {
            return max(x, 0.0);
        }
        case 2u: {
            return select(alpha * x, x, x > 0.0);
        }
        case 3u: {
            return tanh(x);
        }
        case 4u: {
            // Two branches so exp never overflows for large |x|.
            let e = exp(-abs(x));
            return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
        }
        default: {
            return x;
        }
    }
}
