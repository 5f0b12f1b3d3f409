//! Buffer planning: where every tensor of a step lives.
//!
//! Persistent tensors (parameters, their gradients, state, externals) have fixed homes. Transient
//! tensors are placed by liveness into arena banks: a tensor occupies its range from the first
//! dispatch that touches it to the last, and ranges whose lifetimes do not overlap share memory. A
//! bank never exceeds the adapter's max storage binding, so any tensor can be bound on its own; a
//! transient larger than that is refused with the limit named.

use anyhow::{bail, Result};

use super::builder::BoundCall;
use super::tensor::{Role, TensorId, TensorInfo};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArenaSlot {
    pub bank: usize,
    pub offset: u64,
}

#[derive(Debug)]
pub struct Placement {
    /// `Some` for transient tensors (after alias resolution), indexed by tensor.
    pub slots: Vec<Option<ArenaSlot>>,
    pub bank_bytes: Vec<u64>,
}

struct Live {
    offset: u64,
    bytes: u64,
    last: usize,
}

/// Places the transient tensors of `steps`. `root[t]` resolves views to the tensor owning storage;
/// `keep` lists tensors that must survive to the end of the step (outputs the host reads).
pub fn place(
    tensors: &[TensorInfo],
    root: &[TensorId],
    steps: &[BoundCall],
    keep: &[TensorId],
    max_bind: u64,
    align: u64,
) -> Result<Placement> {
    let n = tensors.len();
    let (mut first, mut last) = (vec![usize::MAX; n], vec![0usize; n]);
    for (i, s) in steps.iter().enumerate() {
        for &a in &s.args {
            let r = root[a.0].0;
            first[r] = first[r].min(i);
            last[r] = last[r].max(i);
        }
    }
    for k in keep {
        last[root[k.0].0] = steps.len();
    }
    let mut order: Vec<usize> =
        (0..n).filter(|&t| root[t].0 == t && tensors[t].role == Role::Transient && first[t] != usize::MAX).collect();
    // Big tensors first, then by birth: packs better than pure birth order and stays deterministic.
    order.sort_by_key(|&t| (std::cmp::Reverse(tensors[t].bytes()), first[t], t));

    let mut banks: Vec<Vec<(Live, usize)>> = Vec::new();
    let mut slots = vec![None; n];
    for t in order {
        let bytes = tensors[t].bytes().max(4).next_multiple_of(align);
        if bytes > max_bind {
            bail!(
                "tensor {} ({} bytes) is larger than the adapter's max_storage_buffer_binding_size of {max_bind} bytes; \
                 use a smaller batch size",
                tensors[t].name,
                tensors[t].bytes()
            );
        }
        let placed = banks.iter_mut().enumerate().find_map(|(b, bank)| {
            let offset = lowest_fit(bank, first[t], last[t], bytes, max_bind)?;
            bank.push((Live { offset, bytes, last: last[t] }, first[t]));
            Some(ArenaSlot { bank: b, offset })
        });
        slots[t] = Some(match placed {
            Some(s) => s,
            None => {
                banks.push(vec![(Live { offset: 0, bytes, last: last[t] }, first[t])]);
                ArenaSlot { bank: banks.len() - 1, offset: 0 }
            }
        });
    }
    for t in 0..n {
        let r = root[t].0;
        if r != t {
            slots[t] = slots[r];
        }
    }
    let bank_bytes = banks.iter().map(|b| b.iter().map(|(l, _)| l.offset + l.bytes).max().unwrap_or(4)).collect();
    Ok(Placement { slots, bank_bytes })
}

/// Lowest offset in `bank` where `bytes` fit beside every tensor alive during [first, last].
fn lowest_fit(bank: &[(Live, usize)], first: usize, last: usize, bytes: u64, cap: u64) -> Option<u64> {
    let mut busy: Vec<(u64, u64)> = bank
        .iter()
        .filter(|(l, birth)| *birth <= last && l.last >= first)
        .map(|(l, _)| (l.offset, l.offset + l.bytes))
        .collect();
    busy.sort();
    let mut at = 0;
    for (lo, hi) in busy {
        if lo >= at + bytes {
            break;
        }
        at = at.max(hi);
    }
    (at + bytes <= cap).then_some(at)
}
