// mla_kv_dense: a sequence's latent rows (positions 0 .. n_pad, paged, f16 pairs) as the two
// f16 matrices of a prompt chunk's MLA GEMMs (src/ops/attn_mla_gemm.rs): keys
// kd[t · row_words + c] = cache word c of position t (its [c_kv ‖ k_pe] row), and values
// transposed, vt row o = value o (o < r) of every position, n_pad / 2 words per row. Rows at
// positions ≥ n_keys are zero. The block table is the one of the chunk's first token (its
// word index at seqs[meta_offset + 1]); slot of position t = table[t / 16] · 16 + t % 16.
// One thread per (position pair, row word): the transposed words pair the same value of two
// positions, so they are built from bits, not floats.
struct Params {
    row_words: u32, // (r + rd) / 2
    r: u32,
    n_keys: u32,
    n_pad: u32, // a multiple of 2
    meta_offset: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cache: array<u32>;
@group(0) @binding(2) var<storage, read> seqs: array<u32>;
@group(0) @binding(3) var<storage, read_write> kd: array<u32>;
@group(0) @binding(4) var<storage, read_write> vt: array<u32>;

const WG: u32 = 256u;
const BLOCK: u32 = 16u;

fn key_word(t: u32, c: u32) -> u32 {
    if (t >= p.n_keys) {
        return 0u;
    }
    let slot = seqs[seqs[p.meta_offset + 1u] + t / BLOCK] * BLOCK + t % BLOCK;
    return cache[slot * p.row_words + c];
}

@compute @workgroup_size(WG)
fn mla_kv_dense(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = (wid.x + wid.y * nwg.x) * WG + lid;
    let pairs = p.n_pad / 2u;
    if (e >= pairs * p.row_words) {
        return;
    }
    let i2 = e / p.row_words;
    let c = e % p.row_words;
    let t = 2u * i2;
    let a = key_word(t, c);
    let b = key_word(t + 1u, c);
    kd[t * p.row_words + c] = a;
    kd[(t + 1u) * p.row_words + c] = b;
    if (2u * c < p.r) {
        vt[2u * c * pairs + i2] = (a & 0xFFFFu) | (b << 16u);
        vt[(2u * c + 1u) * pairs + i2] = (a >> 16u) | (b & 0xFFFF0000u);
    }
}
