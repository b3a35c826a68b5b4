//! Picking a Burn [`Device`] by name, for command lines and configuration files.

use burn::tensor::Device;

/// A device name could not be turned into a device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The name is not one of the known device names.
    #[error(
        "unknown device '{0}': expected cpu, flex, wgpu, vulkan, metal, cuda[:N], tch-cpu or tch-cuda[:N]"
    )]
    Unknown(String),
    /// The name is known but the backend was not compiled in.
    #[error(
        "device '{name}' needs baal built with the `{feature}` feature (cargo ... --features {feature})"
    )]
    NotCompiled {
        /// The requested device.
        name: String,
        /// The cargo feature that provides it.
        feature: &'static str,
    },
}

/// Parses a device name into a Burn [`Device`]:
///
/// | name | backend | feature |
/// |---|---|---|
/// | `cpu`, `flex` | pure-Rust CPU | `flex` (default) |
/// | `wgpu` | wgpu, best adapter (Vulkan, Metal, DX12) | `wgpu` |
/// | `vulkan` | wgpu through Vulkan | `vulkan` |
/// | `metal` | wgpu through Metal | `metal` |
/// | `cuda`, `cuda:N` | CUDA device N | `cuda` |
/// | `tch-cpu`, `tch-cuda`, `tch-cuda:N` | libtorch | `tch` |
///
/// # Errors
/// An unknown name, or a backend this build does not include.
///
/// ```
/// let device = baal::device::parse_device("cpu")?;
/// # Ok::<(), baal::device::DeviceError>(())
/// ```
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    let lower = name.trim().to_ascii_lowercase();
    let (kind, index) = match lower.split_once(':') {
        Some((kind, index)) => {
            let index = index
                .parse::<usize>()
                .map_err(|_| DeviceError::Unknown(name.to_string()))?;
            (kind, Some(index))
        }
        None => (lower.as_str(), None),
    };
    let not_compiled = |feature| DeviceError::NotCompiled {
        name: name.to_string(),
        feature,
    };
    // Only CUDA devices take an index.
    if index.is_some() && !matches!(kind, "cuda" | "tch-cuda") {
        return Err(DeviceError::Unknown(name.to_string()));
    }
    #[allow(unused_variables)]
    let index = index.unwrap_or(0);
    match kind {
        "cpu" | "flex" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[cfg(not(feature = "flex"))]
            return Err(not_compiled("flex"));
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
            #[cfg(not(feature = "wgpu"))]
            return Err(not_compiled("wgpu"));
        }
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice));
            #[cfg(not(feature = "vulkan"))]
            return Err(not_compiled("vulkan"));
        }
        "metal" => {
            #[cfg(feature = "metal")]
            return Ok(Device::metal(burn::tensor::DeviceKind::DefaultDevice));
            #[cfg(not(feature = "metal"))]
            return Err(not_compiled("metal"));
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
            #[cfg(not(feature = "cuda"))]
            return Err(not_compiled("cuda"));
        }
        "tch-cpu" => {
            // burn-tch is deprecated in Burn 0.22 but still the way to reach libtorch.
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Ok(Device::libtorch());
            #[cfg(not(feature = "tch"))]
            return Err(not_compiled("tch"));
        }
        "tch-cuda" => {
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Ok(Device::libtorch_cuda(index));
            #[cfg(not(feature = "tch"))]
            return Err(not_compiled("tch"));
        }
        _ => Err(DeviceError::Unknown(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_names() {
        for name in ["gpu", "cuda:x", "cpu:1", "", "tch"] {
            assert_eq!(
                parse_device(name).err(),
                Some(DeviceError::Unknown(name.to_string())),
                "{name}"
            );
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn parses_cpu() {
        assert!(parse_device("cpu").is_ok());
        assert!(parse_device(" Flex ").is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn names_the_missing_feature() {
        let err = parse_device("cuda:1").expect_err("not compiled");
        assert_eq!(
            err,
            DeviceError::NotCompiled {
                name: "cuda:1".into(),
                feature: "cuda"
            }
        );
        assert!(err.to_string().contains("--features cuda"));
    }
}
