// Shared by hadamard.wgsl and hadamard_scale.wgsl: one block of up to MAX_BLOCK values in
// workgroup memory and the log2(block) butterfly stages of the (unnormalized) Sylvester
// Hadamard transform over it.
const WG: u32 = 64u;
const MAX_BLOCK: u32 = 1024u;
var<workgroup> v: array<f32, MAX_BLOCK>;

// Transform v[0..block] in place; every thread of the workgroup calls it (barriers inside).
fn hadamard_butterfly(lid: u32, block: u32) {
    hadamard_butterfly_n(lid, block, block);
}

// Transform each of the total / block blocks of v[0..total] in place (stages of a
// block-sized transform never pair values of two blocks).
fn hadamard_butterfly_n(lid: u32, block: u32, total: u32) {
    workgroupBarrier();
    for (var h = 1u; h < block; h <<= 1u) {
        for (var k = lid; k < total / 2u; k += WG) {
            let i = (k / h) * 2u * h + k % h;
            let a = v[i];
            let c = v[i + h];
            v[i] = a + c;
            v[i + h] = a - c;
        }
        workgroupBarrier();
    }
}
