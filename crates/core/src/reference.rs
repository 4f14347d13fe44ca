//! The f32 reference oracle: plain, obviously-correct versions of every op.
//! Backends are tested against these.
