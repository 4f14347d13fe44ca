//! metal-marlin formats: hand-built blocks decode to independently derived values, pack and
//! unpack round-trip, RTN error stays small, hostile input never panics.

#![allow(clippy::needless_range_loop)]
use marlin_core::formats::{
    dequantize, f32_to_f16, pack_row, quantize, quantize_row_rtn, unpack_row, GroupParams,
    E2M1_TABLE,
};
use marlin_core::{Group, IntBits, IntFormat, QuantFormat};

fn int(bits: IntBits, zeros: bool, group: Group) -> QuantFormat {
    QuantFormat::Int(IntFormat { bits, zeros, group })
}

fn f16b(x: f32) -> [u8; 2] {
    f32_to_f16(x).to_le_bytes()
}

fn decode(f: QuantFormat, blk: &[u8]) -> Vec<f32> {
    let mut y = vec![0f32; 256];
    dequantize(f, blk, &mut y).unwrap();
    y
}

#[test]
fn fp4_g128_hand_built_block() {
    let mut b = vec![0u8; 132];
    // Element i has code i % 16; element 2k in the low nibble of byte k.
    for k in 0..128 {
        b[k] = ((2 * k % 16) | ((2 * k + 1) % 16) << 4) as u8;
    }
    b[128..130].copy_from_slice(&f16b(0.5));
    b[130..132].copy_from_slice(&f16b(-3.0));
    let y = decode(QuantFormat::Fp4(Group::G128), &b);
    for i in 0..256 {
        let s = if i < 128 { 0.5 } else { -3.0 };
        assert_eq!(y[i], E2M1_TABLE[i % 16] * s, "{i}");
    }
    // Element 7 is code 7 (6.0) times 0.5; element 200 is code 8 (−0).
    assert_eq!(y[7], 3.0);
    assert_eq!(y[13], -1.5);
}

#[test]
fn int3_int2_int4z_hand_built_blocks() {
    // int3_g256: element i has code i % 8; low two bits in byte i/4 at bit 2(i%4),
    // high bit in byte 64 + i/8 at bit i%8.
    let mut b = vec![0u8; 100];
    for i in 0..256 {
        let c = (i % 8) as u8;
        b[i / 4] |= (c & 3) << (2 * (i % 4));
        b[64 + i / 8] |= (c >> 2) << (i % 8);
    }
    b[96..98].copy_from_slice(&f16b(0.25));
    let y = decode(int(IntBits::B3, false, Group::G256), &b);
    for i in 0..256 {
        assert_eq!(y[i], ((i % 8) as f32 - 4.0) * 0.25, "{i}");
    }

    // int2_g128: codes 0,1,2,3 repeating → (c − 2)·s.
    let mut b = vec![0u8; 68];
    for byte in b.iter_mut().take(64) {
        *byte = 0b11_10_01_00;
    }
    b[64..66].copy_from_slice(&f16b(1.0));
    b[66..68].copy_from_slice(&f16b(2.0));
    let y = decode(int(IntBits::B2, false, Group::G128), &b);
    assert_eq!(&y[..4], &[-2.0, -1.0, 0.0, 1.0]);
    assert_eq!(&y[128..132], &[-4.0, -2.0, 0.0, 2.0]);

    // int4z_g64: codes i % 16, scales 1,2,3,4, zeros 0,5,10,15.
    let mut b = [0u8; 152];
    for k in 0..128 {
        b[k] = ((2 * k % 16) | ((2 * k + 1) % 16) << 4) as u8;
    }
    for g in 0..4 {
        b[128 + 2 * g..130 + 2 * g].copy_from_slice(&f16b((g + 1) as f32));
        b[136 + g] = (5 * g) as u8;
    }
    let f = int(IntBits::B4, true, Group::G64);
    assert_eq!(f.block_bytes(), 140);
    let y = decode(f, &b[..140]);
    for i in 0..256 {
        let g = i / 64;
        assert_eq!(
            y[i],
            (g + 1) as f32 * ((i % 16) as f32 - (5 * g) as f32),
            "{i}"
        );
    }
}

#[test]
fn nvfp4_and_fp8_hand_built_blocks() {
    let mut b = vec![0u8; 148];
    for k in 0..128 {
        b[k] = 0x71; // element 2k: code 1 (0.5), element 2k+1: code 7 (6.0)
    }
    for s in 0..16 {
        b[128 + s] = if s % 2 == 0 { 0x38 } else { 0x40 }; // UE4M3 1.0 and 2.0
    }
    b[144..148].copy_from_slice(&0.25f32.to_le_bytes());
    let y = decode(QuantFormat::Nvfp4, &b);
    assert_eq!(&y[..2], &[0.125, 1.5]);
    assert_eq!(&y[16..18], &[0.25, 3.0]);

    let mut b = vec![0u8; 260];
    b[0] = 0x38; // 1.0
    b[1] = 0xc4; // −(1 + 4/8)·2^1 = −3
    b[2] = 0x7e; // 448
    b[3] = 0x03; // 3·2^−9
    b[256..260].copy_from_slice(&2.0f32.to_le_bytes());
    let y = decode(QuantFormat::Fp8, &b);
    assert_eq!(&y[..4], &[2.0, -6.0, 896.0, 6.0 * 2f32.powi(-9)]);
}

#[test]
fn pack_unpack_round_trips_every_format() {
    let formats: Vec<QuantFormat> = QuantFormat::marlin_all()
        .into_iter()
        .chain([QuantFormat::MXFP4])
        .collect();
    for f in formats {
        // 608 = two full blocks and a 96-element tail (MXFP4 has plain 32-blocks).
        for n in [512, 608] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
                .collect();
            let mut packed = vec![0u8; f.row_bytes(n).unwrap()];
            quantize_row_rtn(f, &x, 0.001, &mut packed).unwrap();
            let g = marlin_core::formats::scale_group(f).unwrap();
            let mut codes = vec![0u8; n];
            let p0 = GroupParams {
                scale: 0.0,
                zero: 0,
            };
            let mut ps = vec![p0; n.div_ceil(g)];
            let global = unpack_row(f, &packed, &mut codes, &mut ps).unwrap();
            let mut again = vec![0u8; packed.len()];
            pack_row(f, &codes, &ps, global, &mut again).unwrap();
            assert_eq!(packed, again, "{f} {n}");
            let bad = pack_row(f, &codes[..256], &ps, global, &mut again);
            assert!(bad.is_err(), "{f}");
        }
    }
}

#[test]
fn tail_blocks_hand_built_and_tensor_rows() {
    // int3z_g128 row of 288 = one full block (96 + 4 + 2 → 104 B) and a 32-element tail:
    // 8 B low plane, 4 B high plane, one f16 scale, one zero → 15 → 16 B.
    let f = int(IntBits::B3, true, Group::G128);
    assert_eq!(f.row_bytes(288).unwrap(), 104 + 16);
    let mut row = vec![0u8; 120];
    let tail = &mut row[104..];
    for i in 0..32 {
        let c = (7 - i % 8) as u8;
        tail[i / 4] |= (c & 3) << (2 * (i % 4));
        tail[8 + i / 8] |= (c >> 2) << (i % 8);
    }
    tail[12..14].copy_from_slice(&f16b(0.5));
    tail[14] = 3;
    let mut y = vec![0f32; 288];
    dequantize(f, &row, &mut y).unwrap();
    for i in 0..32 {
        assert_eq!(y[256 + i], 0.5 * ((7 - i % 8) as f32 - 3.0), "{i}");
    }
    // A 3 × 576 tensor (two blocks + a 64 tail per row) decodes row by row.
    let vals: Vec<f32> = (0..3 * 576)
        .map(|i| ((i % 13) as f32 - 6.0) * 0.5)
        .collect();
    let t = marlin_core::formats::quantize_tensor(QuantFormat::Fp4(Group::G64), &[3, 576], &vals)
        .unwrap();
    assert_eq!(t.bytes().len(), 3 * (2 * 136 + 36));
    let back = t.to_f32().unwrap();
    let err = vals
        .iter()
        .zip(&back)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err <= 0.5, "max error {err}");
}

/// Relative squared error of RTN on a deterministic bell-shaped signal.
fn rtn_nmse(f: QuantFormat) -> f32 {
    let n = 4096;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let u = ((i * 7919 % 1009) as f32 + 0.5) / 1009.0;
            let v = ((i * 104_729 % 997) as f32 + 0.5) / 997.0;
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos() * 0.02
        })
        .collect();
    let mut b = vec![0u8; f.row_bytes(n).unwrap()];
    quantize(f, &x, &mut b).unwrap();
    let mut y = vec![0f32; n];
    dequantize(f, &b, &mut y).unwrap();
    let err: f32 = x.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum();
    err / x.iter().map(|a| a * a).sum::<f32>()
}

#[test]
fn rtn_error_is_small_and_ordered_by_bits() {
    let cases = [
        (QuantFormat::Fp8, 2e-3),
        (int(IntBits::B8, false, Group::G128), 1e-4),
        (QuantFormat::Fp4(Group::G32), 0.02),
        (QuantFormat::Fp4(Group::G128), 0.03),
        (QuantFormat::Nvfp4, 0.02),
        (int(IntBits::B4, false, Group::G128), 0.015),
        (int(IntBits::B4, true, Group::G128), 0.015),
        (int(IntBits::B3, false, Group::G128), 0.06),
        (int(IntBits::B2, true, Group::G64), 0.2),
    ];
    for (f, max) in cases {
        let e = rtn_nmse(f);
        assert!(e < max && e > 0.0, "{f}: nmse {e}");
    }
    let e2 = rtn_nmse(int(IntBits::B2, false, Group::G128));
    let e3 = rtn_nmse(int(IntBits::B3, false, Group::G128));
    let e4 = rtn_nmse(int(IntBits::B4, false, Group::G128));
    assert!(e2 > e3 && e3 > e4, "{e2} {e3} {e4}");
}

#[test]
fn hostile_values_do_not_panic() {
    let specials = [f32::NAN, f32::INFINITY, -f32::MAX, 1e-40, -0.0, 3.0];
    for f in QuantFormat::marlin_all() {
        let x: Vec<f32> = (0..512).map(|i| specials[i % specials.len()]).collect();
        let mut b = vec![0u8; f.row_bytes(512).unwrap()];
        quantize(f, &x, &mut b).unwrap();
        let mut y = vec![0f32; 512];
        dequantize(f, &b, &mut y).unwrap();
        let zeros = vec![0f32; 512];
        quantize(f, &zeros, &mut b).unwrap();
        dequantize(f, &b, &mut y).unwrap();
        assert!(y.iter().all(|v| *v == 0.0), "{f}");
        assert!(dequantize(f, &b[1..], &mut y).is_err(), "{f}");
    }
}
