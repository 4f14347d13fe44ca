// x_end of the norm hook (x_norm.wgsl): the dot products are scaled by 1 / rms.
fn x_end(ids: Ids) -> f32 {
    return rms_scale(ids);
}
