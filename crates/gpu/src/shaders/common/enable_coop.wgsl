// Must be the first part of a module: f16 types and cooperative matrices (Coop variant).
enable f16;
enable wgpu_cooperative_matrix;
