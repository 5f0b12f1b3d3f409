//! Activations (forward and backward) and the elementwise arithmetic autodiff needs.

use anyhow::Result;

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const WG: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Activation {
    fn entries(self) -> (&'static str, &'static str) {
        match self {
            Activation::Relu => ("relu_forward", "relu_backward_input"),
            Activation::LeakyRelu(_) => ("leaky_relu_forward", "leaky_relu_backward_input"),
            Activation::Tanh => ("tanh_forward", "tanh_backward_input"),
            Activation::Sigmoid => ("sigmoid_forward", "sigmoid_backward_input"),
        }
    }

    /// The LeakyReLU slope (0 for the others).
    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    /// The activation's code in shaders/activation.wgsl.
    pub fn code(self) -> u32 {
        match self {
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Tanh => 3,
            Activation::Sigmoid => 4,
        }
    }
}

fn call(entry: &'static str, n: usize, alpha: f32, operands: Vec<usize>) -> Result<Vec<KernelCall>> {
    nonzero(entry, &[("n", n)])?;
    elements(entry, &[n])?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Elementwise,
        entry,
        params: Params::new().u(n).f(alpha).words(),
        operands,
        workgroups: grid(entry, n, WG)?,
        flops: n as f64,
    }])
}

/// Operands: `[x, y]`.
pub fn forward(act: Activation, n: usize) -> Result<Vec<KernelCall>> {
    call(act.entries().0, n, act.alpha(), vec![0, 1])
}

/// Operands: `[y, dy, dx]` — uses the forward output, not the input.
pub fn backward(act: Activation, n: usize) -> Result<Vec<KernelCall>> {
    call(act.entries().1, n, act.alpha(), vec![0, 1, 2])
}

/// Operands: `[a, b, c]`, c = a + b.
pub fn add(n: usize) -> Result<Vec<KernelCall>> {
    call("add_forward", n, 0.0, vec![0, 1, 2])
}

/// Operands: `[acc, x]`, acc += x.
pub fn accumulate(n: usize) -> Result<Vec<KernelCall>> {
    call("accumulate_forward", n, 0.0, vec![0, 1])
}

/// Operands: `[x, y]`, y = s · x.
pub fn scale(n: usize, s: f32) -> Result<Vec<KernelCall>> {
    call("scale_forward", n, s, vec![0, 1])
}

/// Operands: `[x]`, x = v.
pub fn fill(n: usize, v: f32) -> Result<Vec<KernelCall>> {
    call("fill_forward", n, v, vec![0])
}

pub fn cpu_forward(act: Activation, x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|&x| match act {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a as f64 * x
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        })
        .collect()
}

pub fn cpu_backward(act: Activation, y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(dy)
        .map(|(&y, &g)| match act {
            Activation::Relu => {
                if y > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(a) => {
                if y > 0.0 {
                    g
                } else {
                    a as f64 * g
                }
            }
            Activation::Tanh => g * (1.0 - y * y),
            Activation::Sigmoid => g * y * (1.0 - y),
        })
        .collect()
}
