//! Every WGSL family parses and validates under naga, and stays within WebGPU's default limits.

use gputrain::runtime::Family;

#[test]
fn every_shader_validates_under_naga() {
    for fam in Family::ALL {
        let src = fam.source();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("shader family {} does not parse:\n{}", fam.name(), e.emit_to_string(&src)));
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        v.validate(&module)
            .unwrap_or_else(|e| panic!("shader family {} does not validate:\n{}", fam.name(), e.emit_to_string(&src)));
        let storage = module
            .global_variables
            .iter()
            .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
            .count();
        assert!(
            storage <= 8,
            "shader family {} declares {storage} storage buffers; WebGPU allows 8 per stage",
            fam.name()
        );
        let workgroup_bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
            .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
            .sum();
        assert!(
            workgroup_bytes <= 16 * 1024,
            "shader family {} uses {workgroup_bytes} B of workgroup memory",
            fam.name()
        );
    }
}
