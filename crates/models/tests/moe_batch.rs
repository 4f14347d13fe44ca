//! Batch invariance of the MoE block: with every step a whole number of 4-token tiles (the
//! engine's batch-invariant mode pads to that), a sequence's logits do not depend on which
//! other sequences share its step, although its tokens then share experts with different
//! batch-mates.

use marlin_models::kv_cache::KvCache;
use marlin_models::{LogitsRequest, Model, SeqInput};

fn seq<'a>(tokens: &'a [u32], table: &'a [u32]) -> SeqInput<'a> {
    SeqInput {
        tokens,
        start_pos: 0,
        block_table: table,
        logits: LogitsRequest::All,
    }
}

#[test]
fn moe_logits_do_not_depend_on_batch_mates() {
    let m = Model::load_spec("synthetic:glm47-tiny:q4_0", &mut |_, _| {}).unwrap();
    let a: Vec<u32> = vec![11, 500, 7];
    let pad: Vec<u32> = vec![0];
    let b: Vec<u32> = (0..41).map(|i| (i * 97 + 3) % 1024).collect();
    let run = |other: &[u32]| {
        let mut kv = KvCache::new(&m.config, 4);
        let l = m
            .forward(&[seq(&a, &[0]), seq(other, &[1, 2, 3])], &mut kv)
            .unwrap();
        l.data[..3 * l.vocab].to_vec()
    };
    let alone = run(&pad);
    let shared = run(&b);
    let worst = alone
        .iter()
        .zip(&shared)
        .fold(0f32, |w, (x, y)| w.max((x - y).abs()));
    assert_eq!(worst, 0.0, "max |Δ| {worst}");
}
