//! metal-marlin engine: sequences, the paged KV block allocator, the sampler and the
//! generation loop.
