// Prepended to every kernel family. Dispatches larger than 65 535 workgroups are folded into a 2-D
// grid by the host (runtime::kernels::grid); this recovers the linear invocation index.
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg_size: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * wg_size + lid;
}
