//! Adapter discovery: the `auto|cpu|gpu|gpu:N` selector and the summaries `devices` prints.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Which device the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSelector {
    /// A hardware GPU if one exists (discrete before integrated), else the CPU backend.
    Auto,
    /// The CPU backend; no adapter is opened.
    Cpu,
    /// The best adapter of any kind, software Vulkan (lavapipe) included.
    Gpu,
    /// Adapter `N` in [`list_adapters`] order, software adapters included.
    GpuIndex(usize),
}

impl FromStr for DeviceSelector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            _ => t
                .strip_prefix("gpu:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Self::GpuIndex)
                .ok_or_else(|| Error::BadSelector(s.to_string())),
        }
    }
}

/// The adapter features the engine cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuFeatures {
    pub shader_f16: bool,
    pub subgroup: bool,
    pub cooperative_matrix: bool,
    pub timestamp_query: bool,
}

impl GpuFeatures {
    /// Read the flags from a wgpu feature set.
    pub fn from_wgpu(f: wgpu::Features) -> Self {
        Self {
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            subgroup: f.contains(wgpu::Features::SUBGROUP),
            cooperative_matrix: f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            timestamp_query: f.contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }
}

/// The limits that shape kernels and weight uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
}

/// One adapter as `metal-marlin devices` prints it.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Position in [`list_adapters`] order (the `N` of `gpu:N`).
    pub index: usize,
    pub name: String,
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub features: GpuFeatures,
    pub limits: KeyLimits,
    /// True for software rasterizers (lavapipe, WARP, SwiftShader).
    pub software: bool,
    /// Cooperative matrix configurations, as `MxNxK ab->cr` (e.g. `16x16x16 f16->f32`).
    pub coop_configs: Vec<String>,
}

impl AdapterSummary {
    pub(crate) fn new(index: usize, adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let l = adapter.limits();
        Self {
            index,
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
            features: GpuFeatures::from_wgpu(adapter.features()),
            limits: KeyLimits {
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
                max_buffer_size: l.max_buffer_size,
                max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
                max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
                subgroup_min_size: info.subgroup_min_size,
                subgroup_max_size: info.subgroup_max_size,
            },
            software: info.device_type == wgpu::DeviceType::Cpu,
            coop_configs: adapter
                .cooperative_matrix_properties()
                .iter()
                .map(|c| {
                    format!(
                        "{}x{}x{} {}->{}",
                        c.m_size,
                        c.n_size,
                        c.k_size,
                        scalar_name(c.ab_type),
                        scalar_name(c.cr_type)
                    )
                })
                .collect(),
        }
    }

    /// True when the tensor-core GEMM (`Variant::Coop`) can run: 16x16x16 f16 -> f32
    /// cooperative matrices and subgroups of exactly 32 (its tiling assumes 4 per workgroup).
    pub fn coop_gemm(&self) -> bool {
        self.features.cooperative_matrix
            && self.features.shader_f16
            && self.features.subgroup
            && self.limits.subgroup_min_size == 32
            && self.limits.subgroup_max_size == 32
            && self.coop_configs.iter().any(|c| c == "16x16x16 f16->f32")
    }
}

fn scalar_name(t: wgpu::CooperativeScalarType) -> &'static str {
    match t {
        wgpu::CooperativeScalarType::F32 => "f32",
        wgpu::CooperativeScalarType::F16 => "f16",
        wgpu::CooperativeScalarType::I32 => "i32",
        wgpu::CooperativeScalarType::U32 => "u32",
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ft = self.features;
        let flag = |on: bool, name: &'static str| if on { name } else { "" };
        let feats: Vec<&str> = [
            flag(ft.shader_f16, "shader_f16"),
            flag(ft.subgroup, "subgroup"),
            flag(ft.cooperative_matrix, "cooperative_matrix"),
            flag(ft.timestamp_query, "timestamp_query"),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        let l = &self.limits;
        write!(
            f,
            "gpu:{} {} [{} {}] driver: {} {} | features: {} | max binding {} MiB, max buffer {} MiB, \
             workgroup mem {} KiB, subgroup {}..{}{}",
            self.index,
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.driver_info,
            if feats.is_empty() { "-".to_string() } else { feats.join(",") },
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.subgroup_min_size,
            l.subgroup_max_size,
            if self.coop_configs.is_empty() {
                String::new()
            } else {
                format!(" | cooperative matrices: {}", self.coop_configs.join(", "))
            },
        )
    }
}

/// A wgpu instance over the native backends (`WGPU_BACKEND` may narrow them).
pub(crate) fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    wgpu::Instance::new(desc)
}

/// All adapters, in a stable order (the order `gpu:N` indexes).
pub(crate) fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Every adapter wgpu can see, software ones included.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let inst = instance();
    enumerate(&inst)
        .iter()
        .enumerate()
        .map(|(i, a)| AdapterSummary::new(i, a))
        .collect()
}

/// Rank for automatic choice: higher is better; `None` for adapters `auto` must not pick.
fn hardware_rank(t: wgpu::DeviceType) -> Option<u8> {
    match t {
        wgpu::DeviceType::DiscreteGpu => Some(3),
        wgpu::DeviceType::IntegratedGpu => Some(2),
        wgpu::DeviceType::VirtualGpu => Some(1),
        wgpu::DeviceType::Other | wgpu::DeviceType::Cpu => None,
    }
}

/// Pick an adapter index for `sel` among `types` (adapter device types in list order).
/// `Ok(None)` means "use the CPU backend".
pub(crate) fn choose(sel: DeviceSelector, types: &[wgpu::DeviceType]) -> Result<Option<usize>> {
    let best_hw = types
        .iter()
        .enumerate()
        .filter_map(|(i, &t)| hardware_rank(t).map(|r| (r, std::cmp::Reverse(i))))
        .max()
        .map(|(_, std::cmp::Reverse(i))| i);
    match sel {
        DeviceSelector::Cpu => Ok(None),
        DeviceSelector::Auto => Ok(best_hw),
        DeviceSelector::Gpu => best_hw
            .or_else(|| types.iter().position(|&t| t == wgpu::DeviceType::Cpu))
            .or(if types.is_empty() { None } else { Some(0) })
            .map(Some)
            .ok_or_else(|| Error::NoAdapter("wgpu found no adapters".into())),
        DeviceSelector::GpuIndex(n) if n < types.len() => Ok(Some(n)),
        DeviceSelector::GpuIndex(n) => Err(Error::NoAdapter(format!(
            "gpu:{n} requested, {} adapter(s) present",
            types.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::DeviceType as T;

    #[test]
    fn parses_selectors() {
        assert_eq!(
            "auto".parse::<DeviceSelector>().unwrap(),
            DeviceSelector::Auto
        );
        assert_eq!(
            " CPU ".parse::<DeviceSelector>().unwrap(),
            DeviceSelector::Cpu
        );
        assert_eq!(
            "gpu".parse::<DeviceSelector>().unwrap(),
            DeviceSelector::Gpu
        );
        assert_eq!(
            "gpu:3".parse::<DeviceSelector>().unwrap(),
            DeviceSelector::GpuIndex(3)
        );
        for bad in ["", "gpu:", "gpu:x", "tpu", "gpu:-1"] {
            assert!(bad.parse::<DeviceSelector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_prefers_discrete_and_skips_software() {
        let types = [T::Cpu, T::IntegratedGpu, T::DiscreteGpu, T::DiscreteGpu];
        assert_eq!(choose(DeviceSelector::Auto, &types).unwrap(), Some(2));
        assert_eq!(choose(DeviceSelector::Auto, &[T::Cpu]).unwrap(), None);
        assert_eq!(choose(DeviceSelector::Auto, &[]).unwrap(), None);
        assert_eq!(choose(DeviceSelector::Cpu, &types).unwrap(), None);
    }

    #[test]
    fn explicit_gpu_takes_software() {
        assert_eq!(choose(DeviceSelector::Gpu, &[T::Cpu]).unwrap(), Some(0));
        assert_eq!(
            choose(DeviceSelector::Gpu, &[T::Cpu, T::IntegratedGpu]).unwrap(),
            Some(1)
        );
        assert!(choose(DeviceSelector::Gpu, &[]).is_err());
        assert_eq!(
            choose(DeviceSelector::GpuIndex(0), &[T::Cpu]).unwrap(),
            Some(0)
        );
        assert!(choose(DeviceSelector::GpuIndex(1), &[T::Cpu]).is_err());
    }
}
