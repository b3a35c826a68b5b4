//! Picking a Burn [`Device`] by name, for command lines and configuration files.

use burn::tensor::Device;

/// A device name could not be turned into a device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The name is not one of the known device names.
    #[error(
        "unknown device '{0}': expected cpu, flex, wgpu, vulkan, metal, cuda[:N], tch-cpu, \
         tch-cuda[:N] or remote:ws://HOST:PORT"
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
    /// A remote device could not be connected: no server answers at the address, the server
    /// refused the token, or it speaks another Burn release's protocol.
    #[error("cannot connect the remote device at {address}: {reason}")]
    Remote {
        /// The server's address, `ws://HOST:PORT`.
        address: String,
        /// Burn's reason.
        reason: String,
    },
}

/// The environment variable holding the token a remote device presents, and that
/// `baal remote-serve` requires when it is set.
pub const REMOTE_TOKEN_VAR: &str = "BAAL_REMOTE_TOKEN";

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
/// | `remote:ws://HOST:PORT` | device 0 of the Burn remote server (`baal remote-serve`) there | `remote` |
///
/// A remote device connects here, before returning, and presents the token in
/// [`REMOTE_TOKEN_VAR`] when that is set. Its tensors live on the server: uploads
/// (`Tensor::from_data`) and reads (`into_data`) cross the network, every other op runs there.
///
/// # Errors
/// An unknown name, a backend this build does not include, or a remote server that cannot be
/// connected (after Burn's retries, about 16 s when nothing listens).
///
/// ```
/// let device = baal::device::parse_device("cpu")?;
/// # Ok::<(), baal::device::DeviceError>(())
/// ```
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    let trimmed = name.trim();
    // Before the `kind:index` split: an address has colons of its own.
    if let Some(prefix) = trimmed.get(..REMOTE_PREFIX.len())
        && prefix.eq_ignore_ascii_case(REMOTE_PREFIX)
    {
        return remote_device(name, &trimmed[REMOTE_PREFIX.len()..]);
    }
    let lower = trimmed.to_ascii_lowercase();
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

/// The prefix of a remote device's name.
const REMOTE_PREFIX: &str = "remote:";

/// Connects device 0 of the WebSocket server at `address` (`ws://HOST:PORT`); `name` is the
/// whole device name, for errors.
fn remote_device(name: &str, address: &str) -> Result<Device, DeviceError> {
    // Burn's address parser takes any string (no scheme means `ws`, no port means none), and the
    // client would then spend its retries on it: check the shape here.
    let authority = address
        .strip_prefix("ws://")
        .ok_or_else(|| DeviceError::Unknown(name.to_string()))?;
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(DeviceError::Unknown(name.to_string()));
    }
    #[cfg(feature = "remote")]
    {
        use burn::remote::RemoteHost;
        let mut host = RemoteHost::websocket(address);
        if let Ok(token) = std::env::var(REMOTE_TOKEN_VAR) {
            host = host.with_credential(token);
        }
        Device::remote_options(&host)
            .init()
            .map_err(|err| DeviceError::Remote {
                address: address.to_string(),
                reason: err.to_string(),
            })
    }
    #[cfg(not(feature = "remote"))]
    Err(DeviceError::NotCompiled {
        name: name.to_string(),
        feature: "remote",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_names() {
        for name in [
            "gpu",
            "cuda:x",
            "cpu:1",
            "",
            "tch",
            "remote:",
            "remote:127.0.0.1:3000",
            "remote:http://127.0.0.1:3000",
            "remote:ws://127.0.0.1",
            "remote:ws://:3000",
            "remote:ws://127.0.0.1:port",
        ] {
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

    #[cfg(not(feature = "remote"))]
    #[test]
    fn names_the_remote_feature() {
        let err = parse_device("Remote:ws://127.0.0.1:3000").expect_err("not compiled");
        assert_eq!(
            err,
            DeviceError::NotCompiled {
                name: "Remote:ws://127.0.0.1:3000".into(),
                feature: "remote"
            }
        );
    }
}
