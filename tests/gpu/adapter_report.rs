//! What `info` says of the adapter's cooperative matrices (tensor cores): every configuration the
//! adapter lists, or a plain no naming the missing feature. The software adapters offer none.
use crate::common;

use gputrain::runtime::device::describe_cooperative;
use wgpu::{CooperativeMatrixProperties as Props, CooperativeScalarType as T};

fn config(m: u32, n: u32, k: u32, ab: T, cr: T) -> Props {
    Props { m_size: m, n_size: n, k_size: k, ab_type: ab, cr_type: cr, saturating_accumulation: false }
}

#[test]
fn cooperative_matrix_configurations_are_listed_or_their_absence_named() {
    let h200 = [config(16, 16, 16, T::F16, T::F32), config(16, 8, 8, T::F16, T::F16)];
    assert_eq!(describe_cooperative(&h200), "yes: 16x16x16 f16->f32, 16x8x8 f16->f16");
    let none = describe_cooperative(&[]);
    assert!(none.starts_with("no") && none.contains("EXPERIMENTAL_COOPERATIVE_MATRIX"), "{none}");
    let g = common::gpu();
    let line = g.report().lines().find(|l| l.contains("cooperative matrix")).map(str::to_string);
    let want = describe_cooperative(&g.cooperative_matrices);
    assert!(line.is_some_and(|l| l.ends_with(&want)), "the report lacks the cooperative-matrix line");
}
