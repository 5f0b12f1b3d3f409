//! Every WGSL module parses and validates under naga and stays within WebGPU's default limits; the
//! tiled families' GEMM cores, lowered to SPIR-V as wgpu hands them to a Vulkan driver, keep their
//! accumulators out of function-storage arrays.

use gputrain::ops::gemm::TILES;
use gputrain::runtime::Family;

/// Every module the kernel sets compile: each family once, the tiled ones once per tile.
fn modules() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for fam in Family::ALL {
        if fam.tiled() {
            for t in TILES {
                v.push((format!("{} ({} tile)", fam.name(), t.name), fam.source_for(Some(&t)).unwrap()));
            }
        } else {
            v.push((fam.name().to_string(), fam.source_for(None).unwrap()));
        }
    }
    v
}

fn parse(name: &str, src: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("shader {name} does not parse:\n{}", e.emit_to_string(src)));
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    let info =
        v.validate(&module).unwrap_or_else(|e| panic!("shader {name} does not validate:\n{}", e.emit_to_string(src)));
    (module, info)
}

#[test]
fn every_shader_validates_under_naga() {
    let all = modules();
    assert!(all.len() > Family::ALL.len(), "the tiled families should compile once per tile");
    for (name, src) in &all {
        let (module, _) = parse(name, src);
        let storage = module
            .global_variables
            .iter()
            .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
            .count();
        assert!(storage <= 8, "shader {name} declares {storage} storage buffers; WebGPU allows 8 per stage");
        let workgroup_bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
            .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
            .sum();
        assert!(workgroup_bytes <= 16 * 1024, "shader {name} uses {workgroup_bytes} B of workgroup memory");
    }
}

const OP_TYPE_ARRAY: u32 = 28;
const OP_TYPE_STRUCT: u32 = 30;
const OP_TYPE_POINTER: u32 = 32;
const OP_VARIABLE: u32 = 59;
const STORAGE_FUNCTION: u32 = 7;

/// Function-storage variables in a SPIR-V module whose type is, or holds, an array: what a driver
/// has to place in local memory unless it can prove every index constant.
fn function_arrays(words: &[u32]) -> usize {
    use std::collections::{HashMap, HashSet};
    let mut arrays = HashSet::new();
    let mut structs: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut pointers = HashMap::new();
    let mut found = 0;
    let mut i = 5; // past the header
    while i < words.len() {
        let (count, op) = ((words[i] >> 16) as usize, words[i] & 0xffff);
        assert!(count > 0 && i + count <= words.len(), "malformed SPIR-V at word {i}");
        let w = &words[i + 1..i + count];
        match op {
            OP_TYPE_ARRAY => {
                arrays.insert(w[0]);
            }
            OP_TYPE_STRUCT => {
                structs.insert(w[0], w[1..].to_vec());
            }
            OP_TYPE_POINTER => {
                pointers.insert(w[0], (w[1], w[2]));
            }
            OP_VARIABLE if w[2] == STORAGE_FUNCTION => {
                let (_, pointee) = pointers[&w[0]];
                if holds_array(pointee, &arrays, &structs) {
                    found += 1;
                }
            }
            _ => {}
        }
        i += count;
    }
    found
}

fn holds_array(
    ty: u32,
    arrays: &std::collections::HashSet<u32>,
    structs: &std::collections::HashMap<u32, Vec<u32>>,
) -> bool {
    arrays.contains(&ty) || structs.get(&ty).is_some_and(|m| m.iter().any(|&t| holds_array(t, arrays, structs)))
}

fn spirv(name: &str, src: &str) -> Vec<u32> {
    let (module, info) = parse(name, src);
    let options = naga::back::spv::Options::default();
    naga::back::spv::write_vec(&module, &info, &options, None)
        .unwrap_or_else(|e| panic!("shader {name} does not lower to SPIR-V: {e}"))
}

#[test]
fn tiled_gemm_cores_keep_accumulators_out_of_function_arrays() {
    for (name, src) in modules() {
        if !name.contains(" tile)") {
            continue;
        }
        let found = function_arrays(&spirv(&name, &src));
        assert_eq!(found, 0, "shader {name}: {found} function-storage arrays reach the driver");
    }
}

#[test]
fn the_spirv_check_sees_a_function_array() {
    // The check's negative control: an accumulator array indexed by a loop variable, the form the
    // generated core avoids.
    let src = "
        @group(0) @binding(0) var<storage, read_write> out: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            var acc: array<f32, 8>;
            for (var i = 0u; i < 8u; i++) {
                acc[i] = f32(id.x + i);
            }
            out[id.x] = acc[id.x % 8u];
        }";
    assert_eq!(function_arrays(&spirv("negative control", src)), 1);
}
