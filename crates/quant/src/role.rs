//! What a tensor is to the planner (presets, overrides, rotation) and to calibration.

/// What a tensor is, for format choice (presets, overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Embed,
    LmHead,
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
    /// MLA query down-projection `q_a_proj`.
    QA,
    /// MLA query up-projection `q_b_proj`.
    QB,
    /// MLA `kv_a_proj_with_mqa` (latent + rope key).
    KvA,
    /// MLA `kv_b_proj` (per-head key/value up-projections).
    KvB,
    /// A MoE router: always written as F32, never quantized.
    Router,
    /// A projection of the always-on shared expert.
    Shared(Proj),
    /// A projection of routed expert `e`.
    Expert(usize, Proj),
    /// Norm weights and biases: always written as F32.
    Vector,
}

/// The three projections of a SwiGLU MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proj {
    Gate,
    Up,
    Down,
}

impl Role {
    /// Whether this is a linear layer of a block.
    pub fn is_block_linear(self) -> bool {
        !matches!(
            self,
            Role::Embed | Role::LmHead | Role::Router | Role::Vector
        )
    }

    /// Whether the tensor is written as F32 whatever the plan says (norms, biases, routers).
    pub fn is_f32(self) -> bool {
        matches!(self, Role::Router | Role::Vector)
    }
}
