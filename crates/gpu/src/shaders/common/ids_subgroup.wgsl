// Invocation ids for kernels using subgroup operations (device feature SUBGROUP).
// Never assume a subgroup size: lavapipe has 8, NVIDIA and Apple 32, AMD 32 or 64.
struct Ids {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
}
