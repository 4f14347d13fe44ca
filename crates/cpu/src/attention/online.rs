//! One-pass (online softmax) attention of a group of query heads that share a kv head, over a
//! range of key positions read through the block table; partial results merge exactly.

use super::math::{exp_inplace, Dot};
use crate::kv::KvRows;

/// What every task of one attention call shares.
pub(super) struct Ctx<'a, R: KvRows> {
    pub rows: &'a R,
    pub block_table: &'a [u32],
    pub block_size: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Query heads per kv head.
    pub group: usize,
    pub scale: f32,
}

/// Running softmax state of `group` heads: max score, sum of weights, weighted V sum.
pub(super) struct State {
    m: Vec<f32>,
    l: Vec<f32>,
    acc: Vec<f32>,
}

impl State {
    /// The state of an empty key range.
    pub fn empty(group: usize, head_dim: usize) -> Self {
        Self {
            m: vec![f32::NEG_INFINITY; group],
            l: vec![0.0; group],
            acc: vec![0.0; group * head_dim],
        }
    }

    /// Combines the states of two disjoint key ranges.
    pub fn merge(mut self, other: State) -> State {
        let hd = self.acc.len() / self.m.len().max(1);
        for h in 0..self.m.len() {
            let m = self.m[h].max(other.m[h]);
            if m == f32::NEG_INFINITY {
                continue;
            }
            let (a, b) = ((self.m[h] - m).exp(), (other.m[h] - m).exp());
            self.m[h] = m;
            self.l[h] = self.l[h] * a + other.l[h] * b;
            let acc = &mut self.acc[h * hd..(h + 1) * hd];
            for (x, &y) in acc.iter_mut().zip(&other.acc[h * hd..(h + 1) * hd]) {
                *x = *x * a + y * b;
            }
        }
        self
    }

    /// Writes `acc / l` per head into `out` (`group × head_dim`); no keys gives zeros.
    pub fn finish(&self, out: &mut [f32]) {
        let hd = self.acc.len() / self.m.len().max(1);
        for (h, o) in out.chunks_exact_mut(hd).enumerate() {
            let inv = if self.l[h] > 0.0 {
                1.0 / self.l[h]
            } else {
                0.0
            };
            for (x, &a) in o.iter_mut().zip(&self.acc[h * hd..(h + 1) * hd]) {
                *x = a * inv;
            }
        }
    }
}

/// Attends the `group` query heads in `q` (`group × head_dim`) of kv head `kv_head` over key
/// positions `lo..hi`. Every block of that range must already be checked.
#[inline(always)]
pub(super) fn attend_range<R: KvRows, D: Dot>(
    ctx: &Ctx<'_, R>,
    q: &[f32],
    kv_head: usize,
    lo: usize,
    hi: usize,
) -> State {
    let (bs, hd) = (ctx.block_size, ctx.head_dim);
    let mut st = State::empty(ctx.group, hd);
    let mut kbuf = vec![0.0f32; bs * hd];
    let mut vbuf = vec![0.0f32; bs * hd];
    let mut scores = vec![0.0f32; bs];
    let mut t0 = lo;
    while t0 < hi {
        let t1 = hi.min((t0 / bs + 1) * bs);
        let n = t1 - t0;
        let block = ctx.block_table[t0 / bs] as usize;
        for (i, t) in (t0..t1).enumerate() {
            let row = (block * bs + t % bs) * ctx.n_kv_heads + kv_head;
            ctx.rows.k_row(row, &mut kbuf[i * hd..(i + 1) * hd]);
            ctx.rows.v_row(row, &mut vbuf[i * hd..(i + 1) * hd]);
        }
        for h in 0..ctx.group {
            let qh = &q[h * hd..(h + 1) * hd];
            let mut smax = f32::NEG_INFINITY;
            for (s, k) in scores[..n].iter_mut().zip(kbuf.chunks_exact(hd)) {
                *s = D::dot(qh, k) * ctx.scale;
                smax = smax.max(*s);
            }
            let m_new = st.m[h].max(smax);
            if m_new == f32::NEG_INFINITY {
                continue;
            }
            let corr = (st.m[h] - m_new).exp();
            st.m[h] = m_new;
            let acc = &mut st.acc[h * hd..(h + 1) * hd];
            if corr != 1.0 {
                acc.iter_mut().for_each(|a| *a *= corr);
            }
            let p = &mut scores[..n];
            p.iter_mut().for_each(|s| *s -= m_new);
            exp_inplace(p);
            weighted_sum(acc, p, &vbuf[..n * hd]);
            let sum: f32 = p.iter().sum();
            st.l[h] = st.l[h] * corr + sum;
        }
        t0 = t1;
    }
    st
}

/// `acc += Σ_i w[i] · v[i]` (`v`: `w.len()` rows of `acc.len()` values), 32 columns at a time
/// so the running sums stay in registers across the rows.
#[inline(always)]
fn weighted_sum(acc: &mut [f32], w: &[f32], v: &[f32]) {
    const C: usize = 32;
    let hd = acc.len();
    let full = hd / C * C;
    for c in (0..full).step_by(C) {
        let mut r = [0.0f32; C];
        r.copy_from_slice(&acc[c..c + C]);
        for (&wi, row) in w.iter().zip(v.chunks_exact(hd)) {
            for (x, &y) in r.iter_mut().zip(&row[c..c + C]) {
                *x += wi * y;
            }
        }
        acc[c..c + C].copy_from_slice(&r);
    }
    for (&wi, row) in w.iter().zip(v.chunks_exact(hd)) {
        for (x, &y) in acc[full..].iter_mut().zip(&row[full..]) {
            *x += wi * y;
        }
    }
}
