// Must be the first part of a module: f16 types (device feature SHADER_F16).
enable f16;
